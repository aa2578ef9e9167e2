#!/usr/bin/env bash
# Times `saliency run` on the QR-DQN and actor-critic fixtures, scaled up: each fixture's clean
# inputs repeated (floats jittered by up to 1%) to N inputs, for the default target and for
# `value`, with and without the raw per-input JSON file. Wall time and peak RSS, one run each.
#
#   scripts/bench-algorithms.sh            # writes bench/algorithms.md
#
# Needs python3 (standard library only) and GNU time (/usr/bin/time).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
bench_setup bench-algorithms
python3 - "$work" <<'PY'
import json, os, random, shutil, sys
work = sys.argv[1]
random.seed(0)
for name, n in [("qrdqn", 10000), ("ppo_cartpole", 10000), ("ppo_vecnormalize", 10000),
                ("ppo_cnn", 1000), ("ppo_dict_separate", 1000)]:
    src, dst = os.path.join("tests", "fixtures", name), os.path.join(work, name)
    os.makedirs(os.path.join(dst, "activation_inputs"))
    shutil.copytree(os.path.join(src, "patching_results"), os.path.join(dst, "patching_results"))
    for f in ("agent.zip", "vec_normalize.pkl"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)
    base = list(json.load(open(os.path.join(src, "activation_inputs", "clean_inputs.json"))).values())
    out = {}
    for i in range(n):
        v = base[i % len(base)]["input"]
        out[f"x{i:05d}"] = {"input": [x if float(x).is_integer() else x * (1 + random.uniform(-0.01, 0.01)) for x in v]}
    json.dump(out, open(os.path.join(dst, "activation_inputs", "clean_inputs.json"), "w"))
PY
{
  echo "| agent | inputs | target | run --raw-gradients none | run (json) |"
  echo "| --- | ---: | --- | ---: | ---: |"
  for f in qrdqn ppo_cartpole ppo_vecnormalize ppo_cnn ppo_dict_separate; do
    n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$work/$f/activation_inputs/clean_inputs.json")
    for t in default value; do
      [ "$t" = value ] && [ "$f" = qrdqn ] && continue
      args=(); [ "$t" = value ] && args=(--target value)
      row="| $f | $n | $t |"
      for raw in none json; do
        sync
        s=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$work/rss" "$bin" run -q --raw-gradients "$raw" --agent-path "$work/$f" \
          --output-dir "$work/out-$f" "${args[@]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
        e=$(date +%s.%N)
        row="$row $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$s" "$e"), $(( $(cat "$work/rss") / 1024 )) MB |"
        rm -rf "$work/out-$f"
      done
      echo "$row"
    done
  done
} | tee bench/algorithms.md
