#!/usr/bin/env bash
# Runs the whole test suite. Installs libtorch on first use (see scripts/setup-libtorch.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup-libtorch.sh
cargo test --locked "$@"
