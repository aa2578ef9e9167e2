#!/usr/bin/env bash
# Reproduces the benchmark table of docs/performance.md: `saliency run` against the Python tool's method
# (scripts/reference/python_tool.py: SB3 + PyTorch autograd one input at a time, json.dump)
# on the Dict-MLP demo agent and the Atari-size CNN fixture, at 100, 1,000 and 10,000 inputs;
# then `saliency ablate` (20 random draws) against `run --raw-gradients none` on the demo with
# 1,000 inputs and the CNN with 100; then the criterion benches (float writer, selection,
# explorer frame, the explorer's evidence line).
#
#   scripts/bench.sh                 # everything (first run: ~3 GB of Python wheels, fixtures)
#   SIZES="100 1000" scripts/bench.sh
#   SKIP_CRITERION=1 scripts/bench.sh
#   ONLY_ABLATION=1 scripts/bench.sh # only the ablation table (bench/ablation.md)
#   ONLY_MEASURES=1 scripts/bench.sh # only the measures table (bench/measures.md)
#
# Python runs whose memory would not fit this machine are skipped and reported as such
# (PY_MAX_FLOATS below). Results: bench/results.md (and stdout). Not run by CI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SIZES="${SIZES:-100 1000 10000}"
# The Python method keeps every gradient in Python lists (~32 bytes per float, plus the JSON
# text and the re-read for averaging): beyond this many floats it does not fit in 24 GB.
PY_MAX_FLOATS="${PY_MAX_FLOATS:-200000000}"
PY_TIMEOUT="${PY_TIMEOUT:-3600}"
venv="${BENCH_VENV:-$root/.bench-venv}"
data="$root/fixtures-large"
out="$root/bench"
mkdir -p "$out" "$data"

scripts/setup-libtorch.sh
cargo build --release --locked --quiet
bin="$root/target/release/saliency"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, stable_baselines3" 2>/dev/null; then
  echo "bench: creating $venv (torch 2.11.0, stable-baselines3 2.9.2) ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.11.0 stable-baselines3==2.9.2 gymnasium
fi
py="$venv/bin/python"

# Fixtures: the demo agent with N fresh inputs; the Atari-size CNN with N inputs.
make_fixture() { # agent n
  if [ "$1" = demo ]; then
    [ -f "$data/demo_$2/activation_inputs/clean_inputs.json" ] ||
      "$py" scripts/reference/make_fixtures.py demo-inputs --inputs "$2" --out "$data/demo_$2"
  else
    [ -f "$data/atari_cnn_$2/activation_inputs/clean_inputs.json" ] ||
      "$py" scripts/reference/make_fixtures.py atari --inputs "$2" --out "$data/atari_cnn_$2"
  fi
}
[ -n "${ONLY_ABLATION:-}${ONLY_MEASURES:-}" ] && SIZES=""
for n in $SIZES; do
  make_fixture demo "$n"
  make_fixture atari_cnn "$n"
done

# /usr/bin/time: wall seconds and peak RSS (KB); "-" when a run fails or is skipped. Each run
# starts after `sync`, so no tool pays for writing back the previous tool's files; the host's
# steal time during the run (from /proc/stat: this is a shared VM) is reported with it.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
measure() { # label, then the command
  local label="$1"; shift
  local log; log="$(mktemp)"
  sync
  local s0; s0=$(steal_ticks)
  if /usr/bin/time -f "%e %M" -o "$log.time" "$@" >"$log" 2>&1; then
    read -r wall rss <"$log.time"
    local steal; steal=$(awk -v a="$s0" -v b="$(steal_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}')
    echo "$wall $((rss / 1024)) $steal"
  else
    echo "bench: $label failed:" >&2; tail -5 "$log" >&2
    echo "- - -"
  fi
  rm -f "$log" "$log.time"
}

# Table cells: "Python wall / saliency wall", and "wall, RSS (steal)" or "skipped (why)".
ratio() { if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0fx", a / b}'; else echo "-"; fi; }
cell() { # wall, rss, steal
  if [[ "$1" =~ ^[0-9.]+$ ]]; then
    local s=""; if awk -v x="${3:-0}" 'BEGIN {exit !(x >= 0.5)}'; then s=" (steal $3 s)"; fi
    echo "$1 s, $2 MB$s"
  else echo "$1 ($2)"; fi
}

table="$out/results.md"
: >"$out/selection_check.txt"
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB."
  echo "Wall time in seconds, peak RSS in MB; ratio = Python wall / saliency wall (same agent and inputs, same run)."
  echo "Where the host took CPU time from this VM during a run (steal time, /proc/stat), it is shown as \"steal N s\" (CPU-seconds, both cores together)."
  echo
  echo "| agent | inputs | Python method | saliency run (json) | ratio | saliency run --raw-gradients none | ratio |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$table"

for agent in demo atari_cnn; do
  weights=$([ "$agent" = demo ] && echo 15493 || echo 1687206)
  for n in $SIZES; do
    dir="$data/${agent}_$n"
    rm -rf "$dir/gradient_analysis" "$dir/py_out" "$dir/rs_json" "$dir/rs_none"
    if [ $((n * weights)) -le "$PY_MAX_FLOATS" ]; then
      read -r py_wall py_rss py_steal < <(measure "python $agent $n" timeout "$PY_TIMEOUT" "$py" scripts/reference/python_tool.py run \
        --agent_path "$dir" --useful_neurons_path "$dir/useful_neurons.json" --output_dir "$dir/py_out")
    else
      py_wall="skipped"; py_steal=""; py_rss="needs ~$((n * weights * 32 / 1000000000)) GB"
    fi
    # The JSON raw file of the CNN is 50 MB per input: write it only where it fits on disk.
    if [ $((n * weights)) -le 2000000000 ]; then
      read -r js_wall js_rss js_steal < <(measure "saliency json $agent $n" "$bin" run -q --agent-path "$dir" --output-dir "$dir/rs_json")
    else
      js_wall="skipped"; js_steal=""; js_rss="raw file ~$((n * weights * 30 / 1000000000)) GB"
    fi
    read -r no_wall no_rss no_steal < <(measure "saliency none $agent $n" "$bin" run -q --raw-gradients none --agent-path "$dir" --output-dir "$dir/rs_none")
    echo "| $agent | $n | $(cell "$py_wall" "$py_rss" "${py_steal:-}") | $(cell "$js_wall" "$js_rss" "${js_steal:-}") | $(ratio "$py_wall" "$js_wall") | $(cell "$no_wall" "$no_rss" "${no_steal:-}") | $(ratio "$py_wall" "$no_wall") |" >>"$table"
    # Same selection from both tools (the averages agree to float32 rounding).
    if [ -f "$dir/py_out/candidate_weights.json" ] && [ -f "$dir/rs_none/candidate_weights.json" ]; then
      "$py" - "$dir/py_out/candidate_weights.json" "$dir/rs_none/candidate_weights.json" <<'PY' >>"$out/selection_check.txt"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda d: [(t["layer_name"], t["neuron_index"], t["weight_index"], t["source"]) for t in d["weight_targets"]]
print(sys.argv[1].split("fixtures-large/")[-1], "Python and saliency: same selection" if key(a) == key(b) else "DIFFERENT selection")
PY
    fi
    rm -rf "$dir/rs_json"
  done
done

# Measures: every measure (and, separately, the input saliency) kept in the same pass, against
# the pass alone, on the demo with 10,000 inputs and the CNN with 1,000.
if [ -z "${ONLY_ABLATION:-}" ]; then
  mt="$out/measures.md"
  {
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores; wall time and peak RSS; ratio = with / without, same run."
    echo
    echo "| agent | inputs | run --raw-gradients none | + --measures all | ratio | + --input-saliency | ratio |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  } >"$mt"
  for spec in "demo 10000" "atari_cnn 1000"; do
    read -r agent n <<<"$spec"
    make_fixture "$agent" "$n"
    dir="$data/${agent}_$n"
    rm -rf "$dir/rs_m"
    read -r a_wall a_rss a_steal < <(measure "run none $agent $n" "$bin" run -q --raw-gradients none --agent-path "$dir" --output-dir "$dir/rs_m")
    read -r b_wall b_rss b_steal < <(measure "measures $agent $n" "$bin" run -q --raw-gradients none --measures all --agent-path "$dir" --output-dir "$dir/rs_m")
    read -r c_wall c_rss c_steal < <(measure "input saliency $agent $n" "$bin" run -q --raw-gradients none --input-saliency --agent-path "$dir" --output-dir "$dir/rs_m")
    r() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
    echo "| $agent | $n | $(cell "$a_wall" "$a_rss" "$a_steal") | $(cell "$b_wall" "$b_rss" "$b_steal") | $(r "$b_wall" "$a_wall") | $(cell "$c_wall" "$c_rss" "$c_steal") | $(r "$c_wall" "$a_wall") |" >>"$mt"
  done
  cat "$mt"
fi
[ -n "${ONLY_MEASURES:-}" ] && exit 0

# Ablation: `ablate` (the selection and 20 random draws, zero mode) against the gradient pass
# alone (`run --raw-gradients none`), same agent and inputs, one after the other.
abl="$out/ablation.md"
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores; wall time and peak RSS; ratio = ablate / run."
  echo
  echo "| agent | inputs | saliency run --raw-gradients none | saliency ablate (k=2 m=4, 20 draws) | ratio |"
  echo "| --- | ---: | ---: | ---: | ---: |"
} >"$abl"
for spec in "demo 1000" "atari_cnn 100"; do
  read -r agent n <<<"$spec"
  make_fixture "$agent" "$n"
  dir="$data/${agent}_$n"
  rm -rf "$dir/rs_abl"
  read -r run_wall run_rss run_steal < <(measure "run none $agent $n" "$bin" run -q --raw-gradients none --agent-path "$dir" --output-dir "$dir/rs_abl")
  read -r ab_wall ab_rss ab_steal < <(measure "ablate $agent $n" "$bin" ablate -q --random 20 --agent-path "$dir" \
    --candidates "$dir/rs_abl/candidate_weights.json" --output-dir "$dir/rs_abl")
  ratio_ab=$(awk -v a="$ab_wall" -v b="$run_wall" 'BEGIN {printf "%.2fx", a / b}')
  echo "| $agent | $n | $(cell "$run_wall" "$run_rss" "$run_steal") | $(cell "$ab_wall" "$ab_rss" "$ab_steal") | $ratio_ab |" >>"$abl"
done
cat "$abl"
[ -n "${ONLY_ABLATION:-}" ] && exit 0

if [ -z "${SKIP_CRITERION:-}" ]; then
  # The explorer and selection benches read the CNN fixture's averages made above.
  "$bin" run -q --raw-gradients none --agent-path "$data/atari_cnn_1000" 2>/dev/null || true
  cargo bench --locked --bench json_floats --bench selection --bench frame --bench evidence 2>&1 | tee "$out/criterion.txt" |
    grep -E "^[a-z_]+/|time:|thrpt:" || true
fi
cat "$table"
