#!/usr/bin/env bash
# Fails when a dependency in Cargo.toml is not used by the code: each [dependencies] crate must
# be named in src/ or build.rs, each [dev-dependencies] crate in tests/, benches/ or src/ (as
# `name::`, `use name`, or `name!` for macros). The same text search cargo-machete does, without
# installing anything. A crate needed only for its side effects is listed in ALLOWED, with why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# torch-sys: a direct dependency so that build.rs receives DEP_TCH_LIBTORCH_LIB (for the rpath).
ALLOWED=" torch-sys "
section=""
status=0
while IFS= read -r line; do
  case "$line" in
    "["*"]") section="$line"; continue ;;
  esac
  [ "$section" = "[dependencies]" ] || [ "$section" = "[dev-dependencies]" ] || continue
  name="$(printf '%s' "$line" | sed -n 's/^\([A-Za-z0-9_-]*\)[[:space:]]*=.*/\1/p')"
  [ -n "$name" ] || continue
  case "$ALLOWED" in *" $name "*) continue ;; esac
  ident="${name//-/_}"
  if [ "$section" = "[dependencies]" ]; then where=(src build.rs); else where=(src tests benches); fi
  if ! grep -rqE "(\b${ident}::|use ${ident}\b|\b${ident}!)" "${where[@]}" --include='*.rs' 2>/dev/null \
    && ! grep -qE "(\b${ident}::|use ${ident}\b)" build.rs 2>/dev/null; then
    echo "unused dependency: $name (in $section of Cargo.toml; not named in ${where[*]})" >&2
    status=1
  fi
done < Cargo.toml
[ "$status" = 0 ] && echo "check-unused-deps: every dependency is used"
exit "$status"
