#!/usr/bin/env bash
# `saliency validate`'s cost (writes bench/validate.md):
#
#  1. the bundled demo (Dict MLP, 15,493 weights) on 100 inputs (its 40 repeated), 512 weights
#     sampled: 5 runs with hyperfine, the whole command (libtorch's start included);
#  2. the Atari-size CNN (NatureCNN on 4x84x84, 1.69 M weights; made by
#     scripts/reference/make_fixtures.py into fixtures-large/ as scripts/bench.sh does) on 100
#     inputs, 512 weights: one run.
#
#   scripts/bench-validate.sh     # needs hyperfine; PY=python with SB3 for the CNN fixture
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
bench_setup bench-validate hyperfine

demo="$work/demo"
demo_repeated "$demo" 3
cmd="$bin validate -q --agent-path $demo --sample 512 --inputs-sample 100 --output-dir $work/out"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/demo.md" -n "validate: demo, 512 weights, 100 inputs" "$cmd" >/dev/null

data="$root/fixtures-large"
cnn="$data/atari_cnn_100"
if [ ! -f "$cnn/activation_inputs/clean_inputs.json" ]; then
  "${PY:-python3}" scripts/reference/make_fixtures.py atari --inputs 100 --out "$cnn"
fi
start=$(date +%s.%N)
"$bin" validate --agent-path "$cnn" --sample 512 --inputs-sample 100 --output-dir "$work/cnn" >"$work/cnn.txt" 2>&1
cnn_s=$(echo "$(date +%s.%N) - $start" | bc)

{
  echo "# Validate benchmarks"
  echo
  echo "\`scripts/bench-validate.sh\` on $(machine), $(date -u +%F)."
  echo
  echo "## The demo: 512 weights ablated alone over 100 inputs"
  echo
  cat "$work/demo.md"
  echo
  echo "## The Atari-size CNN (1.69 M weights): 512 weights over 100 inputs, one run"
  echo
  printf 'Wall time %.1f s. Its table:\n\n```\n' "$cnn_s"
  grep -v '^note:' "$work/cnn.txt"
  echo '```'
} >bench/validate.md
cat bench/validate.md
