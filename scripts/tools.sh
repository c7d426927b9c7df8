#!/usr/bin/env bash
# Provision agentbuild's developer/CI tools into project-local folders, at pinned versions.
#
#   .venv/          moto[server], cargo-lambda, ziglang, cfn-lint, aws-sam-cli, pytest
#   .venv-checkov/  checkov (it pins boto3 exactly, at a version aws-sam-cli rejects, so it
#                   cannot share .venv); linked as .venv/bin/checkov
#   .venv-build/    the local code build's host tools (issue 22): the AWS CLI the code buildspec
#                   calls (CodeBuild's Lambda images ship AWS CLI v2; v1 takes the same s3api
#                   commands) and uv for `make bench-artifact`; apart so its botocore pin cannot
#                   fight moto's and aws-sam-cli's
#   node_modules/   asl-validator, from package.json + package-lock.json (npm ci)
#   rustup target   aarch64-unknown-linux-gnu (Lambda runs arm64; cargo lambda cross-builds with zig)
#
# The venvs are made and filled by uv (pinned below), itself bootstrapped with pip into
# .venv-build: uv downloads and installs in parallel, ~4 s for .venv where pip took minutes.
#
# Idempotent: each part is skipped when its stamp (a hash of its pins) matches. Safe to run on
# every `make` invocation. FORCE=1 reinstalls.
#
# `scripts/tools.sh demo`: only what `make demo` runs (.venv-build, .venv); checkov, node_modules
# and the Rust cross target wait for the first `make test` (or plain `scripts/tools.sh`).
set -euo pipefail
SCOPE="${1:-all}"
case "$SCOPE" in all|demo) ;; *) echo "usage: scripts/tools.sh [demo]" >&2; exit 2;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# ---- pins (change here only) -------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
PY_PINS=(
  "moto[server]==5.2.5"       # local/stack.py asserts this exact version (its engine glue)
  "cargo-lambda==1.9.2"
  "ziglang==0.15.2"
  "cfn-lint==1.58.0"
  "aws-sam-cli==1.170.0"
  "pytest==9.2.0"
  "pytest-xdist==3.8.0"       # scripts/e2e.sh runs the independent end-to-end scenarios concurrently
)
CHECKOV_PINS=(
  "checkov==3.3.30"
)
UV_PIN="uv==0.13.8"            # installs every venv; the same uv the code buildspec installs (buildspec-code.yml)
BUILD_PINS=(
  "awscli==1.46.2"
  "$UV_PIN"
)
RUST_TARGETS=(aarch64-unknown-linux-gnu)
# ------------------------------------------------------------------------------------------

T0=$SECONDS
INSTALLED=""
step_start() { STEP_T0=$SECONDS; INSTALLED=1; echo "tools: $1 ..."; }
step_done() { echo "tools: $1 done in $((SECONDS - STEP_T0)) s"; }

hash_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# Creates venv $1 with packages $2.. unless its stamp matches the pins.
UV=.venv-build/bin/uv
ensure_venv() {
  local dir="$1"; shift
  local stamp="$dir/.agentbuild-pins"
  local want; want="$(hash_of uv bytecode "$("$PYTHON" -c 'import sys; print(sys.version)')" "$@")"
  if [[ -z "${FORCE:-}" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tools: $dir up to date ($*)"
    return
  fi
  step_start "$dir: installing $*"
  rm -rf "$dir"
  if [[ "$dir" == .venv-build ]]; then
    # The bootstrap: pip puts uv into .venv-build; uv installs the rest (its own pins too).
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$UV_PIN"
  else
    "$UV" venv --quiet --seed --python "$PYTHON" "$dir"   # --seed: pip too (tests run `python -m pip download`)
  fi
  # --compile-bytecode: every Python process of a run (five moto servers, the xdist workers,
  # cfn-lint, checkov, each `aws` call of a layer build, ...) imports .pyc files instead of
  # compiling its imports from source each time (PYTHONDONTWRITEBYTECODE=1 is common on CI
  # hosts and set here): cfn-lint's start 4.2 -> 1.7 s, moto + boto3 2.2 -> 1.4 s.
  "$UV" pip install --quiet --compile-bytecode --python "$dir/bin/python" "$@"
  echo "$want" > "$stamp"
  step_done "$dir"
}

# Versions as installed, so a log says what ran (skipped when nothing changed: the pins say it).
# From the packages' metadata: `checkov --version` alone takes 5 s of CPU, `sam --version` 2 s.
versions() {  # venv, distribution names: "name version, ..."
  "$1/bin/python" - "${@:2}" <<'PY'
import importlib.metadata as m, sys
print(", ".join(f"{d} {m.version(d)}" for d in sys.argv[1:]))
PY
}

ensure_venv .venv-build "${BUILD_PINS[@]}"
ensure_venv .venv "${PY_PINS[@]}"
if [[ "$SCOPE" == demo ]]; then
  [[ -n "$INSTALLED" || -n "${VERBOSE:-}" ]] && echo "tools: $(versions .venv moto)," \
    "$(.venv/bin/cargo-lambda lambda --version 2>/dev/null | head -1) (the demo's; the rest comes with make test)"
  echo "tools: ready for the demo in $((SECONDS - T0)) s"
  exit 0
fi
ensure_venv .venv-checkov "${CHECKOV_PINS[@]}"
ln -sfn ../../.venv-checkov/bin/checkov .venv/bin/checkov

# node_modules: keyed by the lockfile, so a changed pin reinstalls.
NODE_STAMP=node_modules/.agentbuild-lock
want="$(hash_of "$(cat package-lock.json)" "$(node --version)")"
if [[ -z "${FORCE:-}" && -f "$NODE_STAMP" && "$(cat "$NODE_STAMP")" == "$want" ]]; then
  echo "tools: node_modules up to date (asl-validator $(node -p 'require("./package.json").devDependencies["asl-validator"]'))"
else
  step_start "node_modules: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$NODE_STAMP"
  step_done "node_modules"
fi

# Rust cross target for `cargo lambda build --arm64` (rustup is a no-op when present).
if command -v rustup >/dev/null; then
  installed="$(rustup target list --installed)"
  for t in "${RUST_TARGETS[@]}"; do
    if ! grep -qx "$t" <<<"$installed"; then
      step_start "rustup target add $t"
      # Only `make package` needs it: a machine that cannot fetch it still runs tests and demo.
      if rustup target add "$t"; then step_done "rustup target $t"
      else echo "tools: WARNING: could not add Rust target $t; make package will fail" >&2; fi
    fi
  done
fi

[[ -n "$INSTALLED" || -n "${VERBOSE:-}" ]] && echo "tools: $(versions .venv moto cfn-lint aws-sam-cli)," \
  "$(.venv/bin/cargo-lambda lambda --version 2>/dev/null | head -1)," \
  "zig $(.venv/bin/python -m ziglang version)," \
  "$(versions .venv-checkov checkov)," \
  "asl-validator $(node -p 'require("./node_modules/asl-validator/package.json").version')"
echo "tools: ready in $((SECONDS - T0)) s"
