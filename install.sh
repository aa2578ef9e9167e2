#!/usr/bin/env bash
# Installs saliency under PREFIX (default ~/.local) so that it keeps working when this checkout
# is deleted:
#   PREFIX/bin/saliency                      the release binary (finds its libraries through an
#                                            $ORIGIN-relative rpath: ../lib/saliency)
#   PREFIX/lib/saliency/                     the libtorch libraries it links (CPU: ~0.5 GB)
#   PREFIX/share/saliency/demo/              the bundled demo agent (`saliency` with no arguments)
#   PREFIX/share/man/man1/saliency*.1        man pages
#   PREFIX/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}
#                                            shell completions
# Builds first (installing libtorch into .libtorch/ if needed). Running it again replaces the
# installed files.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${1:-$HOME/.local}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
cd "$root"
scripts/setup-libtorch.sh
cargo build --release --locked --quiet
bin="target/release/saliency"

libdir="$prefix/lib/saliency"
share="$prefix/share/saliency"
mkdir -p "$prefix/bin" "$libdir" "$share" "$prefix/share/man/man1" \
  "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
  "$prefix/share/fish/vendor_completions.d"

# Every library the binary resolves from .libtorch/ (libtorch_cpu, libc10, libgomp, and the two
# small CUDA runtime libraries libtorch_cpu links), flat in one folder: libtorch's own rpath
# includes $ORIGIN, so they find each other there.
libs="$(ldd "$bin" | awk -v lt="$root/.libtorch/" '$3 ~ "^"lt {print $3}')"
[ -n "$libs" ] || { echo "install: ldd found no libtorch library for $bin" >&2; exit 1; }
for lib in $libs; do
  cp -fL "$lib" "$libdir/$(basename "$lib").partial"
  mv -f "$libdir/$(basename "$lib").partial" "$libdir/$(basename "$lib")"
done
cp -f "$bin" "$prefix/bin/saliency.partial"
mv -f "$prefix/bin/saliency.partial" "$prefix/bin/saliency"

rm -rf "$share/demo.partial"
mkdir -p "$share/demo.partial"
cp -R assets/demo/. "$share/demo.partial/"
rm -rf "$share/demo.partial/gradient_analysis"
rm -rf "$share/demo"
mv "$share/demo.partial" "$share/demo"

"$prefix/bin/saliency" man --dir "$prefix/share/man/man1"
"$prefix/bin/saliency" completions bash >"$prefix/share/bash-completion/completions/saliency"
"$prefix/bin/saliency" completions zsh >"$prefix/share/zsh/site-functions/_saliency"
"$prefix/bin/saliency" completions fish >"$prefix/share/fish/vendor_completions.d/saliency.fish"

echo "installed saliency into $prefix ($(du -sh "$libdir" | cut -f1) of libraries)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH" ;;
esac
