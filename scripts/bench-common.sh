# Sourced by the benchmark scripts (bench-sweep.sh, bench-validate.sh, bench-algorithms.sh).
#
# bench_setup NAME [hyperfine]: goes to the repository's root ($root), installs libtorch, builds
# the release binary ($bin), makes a scratch folder removed at exit ($work) and sets $runs
# (RUNS, default 5); with "hyperfine", first checks that hyperfine is installed.
bench_setup() {
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cd "$root"
  if [ "${2:-}" = hyperfine ]; then
    command -v hyperfine >/dev/null || { echo "$1: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
  fi
  scripts/setup-libtorch.sh
  cargo build --release --locked --quiet
  bin="$root/target/release/saliency"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  runs="${RUNS:-5}"
}

# demo_repeated DEST TIMES: a copy of the bundled demo whose clean inputs are its own repeated
# TIMES times (named KEY-0, KEY-1, ...).
demo_repeated() {
  cp -r "$root/assets/demo" "$1"
  python3 - "$1/activation_inputs/clean_inputs.json" "$2" <<'PY'
import json, sys
p, times = sys.argv[1], int(sys.argv[2])
d = json.load(open(p))
json.dump({f"{k}-{r}": v for r in range(times) for k, v in d.items()}, open(p, "w"))
PY
}

# machine: "N cores (CPU model)", for the reports' first line.
machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
}
