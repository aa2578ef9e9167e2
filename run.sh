#!/usr/bin/env bash
# Builds saliency (release) and runs it; with no arguments it opens the explorer on the bundled
# demo agent (assets/demo).
# Installs libtorch on first use (see scripts/setup-libtorch.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup-libtorch.sh
cargo build --release --locked --quiet
exec target/release/saliency "$@"
