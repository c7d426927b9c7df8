#!/usr/bin/env bash
# `make package`: every Lambda cross-built for arm64 (Graviton), release profile (LTO, one
# codegen unit, opt-level z, panic=abort, stripped), zipped as target/lambda/<fn>/bootstrap.zip.
# cargo-lambda drives the build and zig (both from the project's .venv) links for aarch64.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"
functions=(validate-request start-build check-build record-result api rebuild)
args=()
for f in "${functions[@]}"; do args+=(-p "$f"); done
T0=$SECONDS
cargo lambda build --release --arm64 --output-format zip "${args[@]}"
echo "package: built in $((SECONDS - T0)) s"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  printf '%-18s %8d bytes  %s\n' "$f" "$(stat -c %s "$zip")" "$(unzip -Z1 "$zip" 2>/dev/null | tr '\n' ' ' || true)"
done
