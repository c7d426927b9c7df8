#!/usr/bin/env bash
# `make package`: every Lambda cross-built for arm64 (Graviton), release profile (LTO, one
# codegen unit, opt-level z, panic=abort, stripped), zipped as target/lambda/<fn>/bootstrap.zip.
# cargo-lambda drives the build and zig (both from the project's .venv) links for aarch64.
# `scripts/package.sh --list` prints the functions and builds nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The Lambdas: every crate under functions/, named after its directory (its package and binary
# too) — the rule of local/agentbuild_local/workspace.py; local/test_stack.py checks both agree.
shopt -s nullglob
functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done
if [[ "${1:-}" == "--list" ]]; then printf '%s\n' "${functions[@]}"; exit 0; fi
(( ${#functions[@]} )) || { echo "package: no Lambda crate under functions/" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"
args=()
for f in "${functions[@]}"; do args+=(-p "$f"); done
T0=$SECONDS
cargo lambda build --release --arm64 --output-format zip "${args[@]}"
echo "package: built in $((SECONDS - T0)) s"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  printf '%-18s %8d bytes  %s\n' "$f" "$(stat -c %s "$zip")" "$(unzip -Z1 "$zip" 2>/dev/null | tr '\n' ' ' || true)"
done
