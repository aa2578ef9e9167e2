#!/usr/bin/env bash
# Builds saliency (release) and runs it; with no arguments it works on the bundled demo agent.
# Installs libtorch on first use (see scripts/setup-libtorch.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup-libtorch.sh
cargo build --release --locked --quiet
if [ $# -eq 0 ]; then
  exec target/release/saliency run --agent-path assets/demo
fi
exec target/release/saliency "$@"
