#!/usr/bin/env bash
# Installs libtorch 2.11.0 (what tch 0.24 wants) into .libtorch/ from the PyPI torch wheel, once.
# CPU use needs only libtorch_cpu.so and libc10.so plus two small CUDA runtime libraries
# (about 540 MB to download). SALIENCY_CUDA=1 installs the full CUDA wheel set instead
# (about 2.7 GB), for `cargo build --features cuda`.
# Quick when already installed: it only checks a marker file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.libtorch"
flavour=cpu
[ "${SALIENCY_CUDA:-0}" = 1 ] && flavour=cuda
marker="$dest/.installed-torch-2.11.0-$flavour"
if [ -f "$marker" ] || { [ "$flavour" = cpu ] && [ -f "$dest/.installed-torch-2.11.0-cuda" ]; }; then
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-libtorch: python3 with pip is needed to fetch libtorch from PyPI" >&2; exit 1; }
echo "setup-libtorch: installing libtorch 2.11.0 ($flavour) into .libtorch/ (once) ..." >&2
tmp="$dest.partial"
rm -rf "$tmp"
if [ "$flavour" = cuda ]; then
  python3 -m pip install --quiet --no-cache-dir --target "$tmp" torch==2.11.0
else
  python3 -m pip install --quiet --no-cache-dir --no-deps --target "$tmp" \
    torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
fi
[ -f "$tmp/torch/lib/libtorch_cpu.so" ] || { echo "setup-libtorch: the wheel has no torch/lib/libtorch_cpu.so" >&2; exit 1; }
rm -rf "$dest"
mv "$tmp" "$dest"
touch "$marker"
echo "setup-libtorch: done ($(du -sh "$dest" | cut -f1))" >&2
