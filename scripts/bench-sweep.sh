#!/usr/bin/env bash
# The sweep's two speed figures, side by side in one run (writes bench/sweep.md):
#
#  1. 12 agents (the three DQN seeds of tests/fixtures/zoo: final model and three checkpoints
#     each) in one `saliency sweep` against 12 `saliency run` processes with the same flags
#     (the same inputs, candidates and raw file), one after the other;
#  2. `saliency run` on 2,000 inputs of the demo's size (the demo's 40 repeated 50 times, 530 MB
#     of raw JSON) on one core (taskset), with the formatting on one thread (RAYON_NUM_THREADS=1;
#     the file is still written on a thread of its own) and on all cores, and the same runs
#     without the raw file, whose difference is the raw file's own time; the output on /dev/shm
#     so the disk's noise stays out.
#
#   scripts/bench-sweep.sh            # needs hyperfine (apt-get install hyperfine)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
bench_setup bench-sweep hyperfine

# 1. Twelve agents.
obs="$root/tests/fixtures/zoo/obs/CartPole-v1.npy"
agents=()
for seed in 1 2 3; do
  d="tests/fixtures/zoo/logs/dqn/CartPole-v1_$seed"
  agents+=("$d/CartPole-v1.zip" "$d/rl_model_1000_steps.zip" "$d/rl_model_2000_steps.zip" "$d/rl_model_3000_steps.zip")
done
mkdir -p "$work/list"
printf '%s\n' "${agents[@]}" >"$work/list/agents.txt"
runs_cmd="i=0; for a in ${agents[*]}; do i=\$((i+1)); $bin run -q --agent-path \$a --inputs $obs --candidates-by saliency:10 --output-dir $work/runs/\$i; done"
sweep_cmd="$bin sweep -q @$work/list/agents.txt --inputs $obs --candidates-by saliency:10 --force --output-dir $work/sweep"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/agents.md" \
  -n "12 x saliency run" "$runs_cmd" -n "saliency sweep (12 agents, --jobs $(nproc))" "$sweep_cmd" >"$work/agents.txt"

# 2. The raw file's formatting on one core and on all.
demo="$work/demo"
demo_repeated "$demo" 50
shm="${SHM:-/dev/shm}"
run="$bin run -q --agent-path $demo"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/format.md" --export-json "$work/format.json" \
  -n "one core (taskset -c 0)" "taskset -c 0 $run --output-dir $shm/saliency-bench-1" \
  -n "formatting on one thread (RAYON_NUM_THREADS=1)" "RAYON_NUM_THREADS=1 $run --output-dir $shm/saliency-bench-t" \
  -n "all $(nproc) cores" "$run --output-dir $shm/saliency-bench-n" \
  -n "one core, no raw file" "taskset -c 0 $run --raw-gradients none --output-dir $shm/saliency-bench-0" \
  -n "all $(nproc) cores, no raw file" "$run --raw-gradients none --output-dir $shm/saliency-bench-0" >"$work/format.txt"
cmp "$shm/saliency-bench-1/weight_gradients.json" "$shm/saliency-bench-n/weight_gradients.json"
cmp "$shm/saliency-bench-t/weight_gradients.json" "$shm/saliency-bench-n/weight_gradients.json"
rm -rf "$shm"/saliency-bench-*
# The raw file's own cost: each run less the same run without it.
python3 - "$work/format.json" >"$work/phase.md" <<'PY'
import json, sys
m = [r["mean"] for r in json.load(open(sys.argv[1]))["results"]]
one, thread, alls, none1, none_all = m
print(f"The raw file's own time (the run less the same run with `--raw-gradients none`): one core {one - none1:.3f} s, "
      f"formatting on one thread {thread - none_all:.3f} s, all cores {alls - none_all:.3f} s: "
      f"**{(one - none1) / (alls - none_all):.2f}x** faster on all cores than on one "
      f"({(thread - none_all) / (alls - none_all):.2f}x against formatting on one thread); "
      f"the whole command {one / alls:.2f}x.")
PY

{
  echo "# Sweep benchmarks"
  echo
  echo "\`scripts/bench-sweep.sh\` on $(machine), $(date -u +%Y-%m-%d); $runs runs each."
  echo
  echo "## 12 agents: one sweep against 12 processes"
  echo
  cat "$work/agents.md"
  echo
  grep -A2 "Summary" "$work/agents.txt" | sed 's/^/    /'
  echo
  echo "## The raw file's formatting (2,000 demo inputs, 530 MB of JSON, same bytes)"
  echo
  cat "$work/format.md"
  echo
  echo
  cat "$work/phase.md"
} >bench/sweep.md
cat bench/sweep.md
