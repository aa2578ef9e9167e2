#!/usr/bin/env bash
# Fuzzes every reader of outside data with cargo-fuzz (libFuzzer), seeded with the real
# fixture files. Works on stable Rust (--sanitizer none, -O: Rust's bounds checks and panics are
# the oracle, plus libFuzzer's timeout and memory limits, and for clean_inputs a differential
# check against the general JSON value parser).
#
#   scripts/fuzz.sh                     # every target, FUZZ_SECONDS (600) each, JOBS (1) at a time
#   FUZZ_SECONDS=60 scripts/fuzz.sh pickle clean_inputs
#
# Crashes land in fuzz/artifacts/<target>/: commit each as a file under tests/fixtures and a
# test in tests/robustness.rs that feeds it to the same reader (none found so far).
# Summary: fuzz/summary.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
JOBS="${JOBS:-1}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pickle torch_zip agent_zip agent_data clean_inputs candidates average_gradients weight_gradients vec_normalize)

scripts/setup-libtorch.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz

# Seed corpora from the fixtures.
seed() { mkdir -p "fuzz/corpus/$1"; cp "$2" "fuzz/corpus/$1/$(basename "$(dirname "$2")")-$(basename "$2")" 2>/dev/null || true; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for fx in tests/fixtures/acrobot tests/fixtures/cartpole tests/fixtures/cnn assets/demo; do
  name="$(basename "$fx")"
  mkdir -p "$tmp/$name"
  (cd "$tmp/$name" && unzip -qo "$root/$fx/agent.zip" data policy.pth && unzip -qo policy.pth 'archive/data.pkl')
  cp "$tmp/$name/data" "$tmp/$name/$name.data"; seed agent_data "$tmp/$name/$name.data"
  cp "$tmp/$name/archive/data.pkl" "$tmp/$name/$name.pkl"; seed pickle "$tmp/$name/$name.pkl"
  cp "$tmp/$name/policy.pth" "$tmp/$name/$name.pth"; seed torch_zip "$tmp/$name/$name.pth"
  seed clean_inputs "$fx/activation_inputs/clean_inputs.json"
  { cat "$fx/patching_results/cross_metric_summary.json"; printf '\0'; [ -f "$fx/useful_neurons.json" ] && cat "$fx/useful_neurons.json"; } >"$tmp/$name/$name.cand"
  seed candidates "$tmp/$name/$name.cand"
done
for fx in tests/fixtures/acrobot tests/fixtures/cartpole; do seed agent_zip "$fx/agent.zip"; done
for f in tests/fixtures/*/reference/average_gradients.json tests/fixtures/demo_reference/average_gradients.json; do seed average_gradients "$f"; done
seed weight_gradients tests/fixtures/acrobot/reference/weight_gradients.json
seed vec_normalize tests/fixtures/ppo_vecnormalize/vec_normalize.pkl
seed vec_normalize tests/fixtures/ppo_dict_vecnormalize/vec_normalize.pkl
head -c 20000 tests/fixtures/acrobot/reference/weight_gradients.json >"$tmp/wg_head.json"; seed weight_gradients "$tmp/wg_head.json"

cd fuzz
cargo fuzz build --sanitizer none -O 2>&1 | tail -1
touch summary.txt
# Keep the other targets' lines; this run's targets get fresh ones.
for t in "${targets[@]}"; do grep -v "^$t: " summary.txt >summary.tmp || true; mv summary.tmp summary.txt; done
run_one() {
  local t="$1" log="fuzz/$1.log"
  (cd "$root/fuzz" && cargo fuzz run --sanitizer none -O "$t" "corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=$([ "$t" = agent_zip ] && echo 200000 || echo 65536) -print_final_stats=1 >"$root/$log" 2>&1) && status=clean || status=FAILED
  local runs; runs=$(grep -E "stat::number_of_executed_units" "$root/$log" | awk '{print $2}' | tail -1)
  echo "$t: $status, ${runs:-?} inputs in ${FUZZ_SECONDS} s (log fuzz/$1.log)" | tee -a "$root/fuzz/summary.txt"
}
cd "$root"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
cat fuzz/summary.txt
! grep -q FAILED fuzz/summary.txt
