#!/usr/bin/env bash
# Makes screenshots/*.png: the real release binary in a real terminal (tmux), its pane captured
# with colours (`capture-pane -e`) and rendered to PNG by scripts/ansi2png.py (Pillow).
#
#   scripts/screenshots.sh          # all of them
#   scripts/screenshots.sh sweep    # only the explorer of many agents (sweep-*.png)
#   scripts/screenshots.sh validate # only the validation (validate.png)
#
# Needs tmux and python3; Pillow is installed into .screenshot-venv on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v tmux >/dev/null || { echo "screenshots: tmux is needed (apt-get install tmux)" >&2; exit 1; }
scripts/setup-libtorch.sh
cargo build --release --locked --quiet
venv="$root/.screenshot-venv"
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import PIL" 2>/dev/null || {
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pillow
}
out="$root/screenshots"
mkdir -p "$out"
bin="$root/target/release/saliency"
W=170 H=48
session=saliency-shots

# A copy of the demo with its inputs repeated, so the run lasts long enough to show progress.
big="$(mktemp -d)"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$big"' EXIT
cp -r assets/demo/. "$big/"
"$venv/bin/python" - "$big/activation_inputs/clean_inputs.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
json.dump({f"{k}-{r}": v for r in range(2000) for k, v in d.items()}, open(p, "w"))
PY

# shot NAME COMMAND KEYS... : start COMMAND, wait, send each key (with pauses), capture.
shot() {
  local name="$1" cmd="$2"; shift 2
  tmux kill-session -t "$session" 2>/dev/null || true
  sleep 0.5 # (the tmux server exits with its last session; let it go before starting anew)
  local w="${SHOT_W:-$W}" h="${SHOT_H:-$H}"
  tmux new-session -d -s "$session" -x "$w" -y "$h" -e COLORTERM=truecolor -e TERM=xterm-256color "$cmd; sleep 30"
  sleep 3
  for k in "$@"; do
    case "$k" in
      sleep:*) sleep "${k#sleep:}" ;;
      *) tmux send-keys -t "$session" "$k"; sleep 0.4 ;;
    esac
  done
  tmux capture-pane -t "$session" -e -p >"$out/$name.txt"
  "$venv/bin/python" scripts/ansi2png.py "$out/$name.txt" "$out/$name.png" --cols "$w" --rows "$h"
  rm -f "$out/$name.txt"
  echo "screenshots/$name.png"
}

# The explorer of many agents: a sweep of the RL Zoo fixture runs and one agent of each
# algorithm (with a broken zip), ablated and validated.
sweep_shots() {
  local mixed="$big/mixed" zoo="tests/fixtures/zoo"
  for a in cartpole qrdqn ppo_cartpole a2c_acrobot maskable_ppo; do
    mkdir -p "$mixed/$a" && cp -r "tests/fixtures/$a/." "$mixed/$a/" && rm -rf "$mixed/$a/reference"
  done
  head -c 20000 tests/fixtures/acrobot/agent.zip >"$mixed/broken.zip"
  local flags="$zoo/logs $mixed --inputs CartPole-v1=$zoo/obs/CartPole-v1.npy --raw-gradients none --ablate --random 5 --validate --validate-sample 128"
  "$bin" sweep -q $flags --output-dir "$big/sweep" || true
  shot sweep-table "$bin $big/sweep" sleep:1
  SHOT_W=80 SHOT_H=24 shot sweep-table-80x24 "$bin $big/sweep" sleep:1
  shot sweep-pinned "$bin $big/sweep" / CartPole-v1_1 Enter g p d
  # The columns after the layers (the last five from the right end is the predictor), by it.
  local right=(); for _ in $(seq 40); do right+=(Right); done
  shot sweep-evidence "$bin $big/sweep" "${right[@]}" Left Left Left Left Left O
  shot sweep-groups "$bin $big/sweep" Tab
  shot sweep-training "$bin $big/sweep" Tab Tab sleep:1
  shot sweep-compare "$bin $big/sweep" / CartPole-v1_2 Enter g Space Down C sleep:1 Down Down
  shot sweep-compare-arch "$bin $big/sweep" / final Enter g Space G C sleep:1
  # (the demo with its inputs repeated first: it is still running when the shot is taken)
  local live="$zoo/logs $mixed --inputs CartPole-v1=$zoo/obs/CartPole-v1.npy --raw-gradients json"
  shot sweep-live "$bin explore $big $live --sweep --jobs 1 --output-dir $big/live" sleep:2.5
}
validate_shots() {
  shot validate "$bin --agent-path assets/demo" sleep:2 V sleep:5 v v V sleep:1
}
case "${1:-}" in
  sweep) sweep_shots; exit 0 ;;
  validate) validate_shots; exit 0 ;;
esac

shot explorer "$bin --agent-path assets/demo" sleep:2
SHOT_W=80 SHOT_H=24 shot terminal-80x24 "$bin --agent-path assets/demo" sleep:2
shot evidence "$bin --agent-path assets/demo --output-dir $big/out" sleep:2 + + ']' sleep:1 A sleep:3
"$venv/bin/python" - "$big/names.json" <<'PY'
import json, sys
names = [f"cell_{r}_{c}" for r in range(10) for c in range(10)] + ["pos_x", "pos_y", "head_east", "head_south", "head_west", "head_north"]
json.dump({"MLP_input": names}, open(sys.argv[1], "w"))
PY
shot inputs-vector "$bin --agent-path assets/demo --feature-names $big/names.json" sleep:2 i sleep:1
shot inputs-image "$bin --agent-path tests/fixtures/cnn" sleep:2 i sleep:1 Right sleep:1
shot neuron "$bin --agent-path assets/demo" Tab n n Enter
shot tuning "$bin --agent-path assets/demo" K 5 Enter '}' g j j Tab s
shot cnn-kernel "$bin --agent-path tests/fixtures/cnn --colormap magma" g j j Tab x
shot running "$bin --agent-path $big --batch-size 16" sleep:2
shot help "$bin --agent-path assets/demo" '?'
NO_COLOR=1 shot no-color "NO_COLOR=1 $bin --agent-path assets/demo"
sweep_shots
validate_shots
