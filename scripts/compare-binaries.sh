#!/usr/bin/env bash
# Runs two builds of saliency with the same flags on every fixture and compares every file
# they write, byte for byte (a refactoring must not change an output). Build the old one from
# another checkout, e.g. `git worktree add /tmp/old <commit>` and `cargo build --release` there.
#
#   scripts/compare-binaries.sh /tmp/old/target/release/saliency [target/release/saliency]
set -u
old="${1:?usage: scripts/compare-binaries.sh OLD_BINARY [NEW_BINARY]}"
new="${2:-target/release/saliency}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fx=tests/fixtures
fail=0
cmp_run() { # name args...
  local name="$1"; shift
  local a=$(mktemp -d) b=$(mktemp -d)
  "$old" "$@" --output-dir "$a" >/dev/null 2>&1; ra=$?
  "$new" "$@" --output-dir "$b" >/dev/null 2>&1; rb=$?
  if [ $ra != $rb ]; then echo "DIFF exit $name: $ra vs $rb"; fail=1; fi
  if diff -r "$a" "$b" >/dev/null; then echo "same  $name ($(cd $a; find . -type f | wc -l) files)"; else echo "DIFF  $name"; diff -rq "$a" "$b"; fail=1; fi
  rm -rf "$a" "$b"
}
for ag in cartpole acrobot cnn combined frozenlake multi qrdqn ppo_cartpole ppo_vecnormalize ppo_cnn ppo_dict_separate ppo_custom_mlp a2c_acrobot maskable_ppo ppo_dict_vecnormalize; do
  extra=""
  [ $ag = ppo_custom_mlp ] && extra="--extractor-activation relu"
  cmp_run "$ag run json+measures+input" run -q --agent-path $fx/$ag --measures all --input-saliency $extra
  cmp_run "$ag run npy --ablate" run -q --agent-path $fx/$ag --raw-gradients npy --ablate --k 3 --m 7 $extra
done
cmp_run "demo run" run -q --agent-path assets/demo
cmp_run "demo run select-by" run -q --agent-path assets/demo --select-by max-abs --measures mean,nonzero
cmp_run "demo ablate k/m scale" ablate -q --agent-path assets/demo --k 1 --m 3 --mode scale:0.5 --random 7 --seed 4
cmp_run "ppo value ablate" ablate -q --agent-path $fx/ppo_cnn --k 2 --m 4 --target value
cmp_run "cartpole gradients npy" gradients -q --agent-path $fx/cartpole --raw-gradients npy --target margin
cmp_run "acrobot average" average -q --gradients-path $fx/acrobot/reference/weight_gradients.json
cmp_run "demo extract" extract -q --cross-metric-path assets/demo/patching_results/cross_metric_summary.json --average-gradients-path tests/fixtures/demo_reference/average_gradients.json --k 5 --m 9
exit $fail
