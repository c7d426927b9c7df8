#!/usr/bin/env bash
# `make test`: every check, in order of cost. Starts the local stack for the end-to-end tests
# when none is running and stops what it started — also when a step fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
T0=$SECONDS
step() { printf '\n== %s (%d s so far)\n' "$*" "$((SECONDS - T0))"; }

# The pinned tools (pip, npm, rustup; mostly network) install while the Rust steps compile, which
# need none of them; every later step waits for them. On a fresh machine this hides ~3.5 min.
mkdir -p target
TOOLS_LOG=target/tools.log
bash scripts/tools.sh >"$TOOLS_LOG" 2>&1 &
TOOLS_PID=$!
trap 'kill "$TOOLS_PID" 2>/dev/null || true' EXIT
wait_for_tools() {
  if ! wait "$TOOLS_PID"; then
    cat "$TOOLS_LOG" >&2
    echo "make test: scripts/tools.sh failed (log above)" >&2
    exit 1
  fi
  tail -n 1 "$TOOLS_LOG"
}

step "rustfmt"
cargo fmt --all -- --check

step "clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# Offline, no credentials: unit, adapter (aws-smithy-mocks) and contract tests.
step "cargo test --workspace"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  -u AWS_ENDPOINT_URL AWS_EC2_METADATA_DISABLED=true cargo test --workspace --quiet

step "tools (installed in the background since the start)"
wait_for_tools

step "state machine definition (asl-validator)"
bash scripts/validate-asl.sh

step "template (cfn-lint, sam validate --lint, checkov)"
bash scripts/check-template.sh

# buildspec.yml's commands run as CodeBuild runs them (one bash, starting in a trapped context),
# with stand-in aws/docker; plus the template's repositories and pinned images.
step "buildspec harness (pytest tests/buildspec)"
"$PY" -m pytest tests/buildspec -q

step "local stack glue (pytest local)"
"$PY" -m pytest local -q

# Starts the local stack if none runs and stops what it started, whatever happens.
# The stack builds the handlers with the test build's features (AGENTBUILD_LOCAL_BUILD_TESTS):
# after `cargo test --workspace` nothing but the handler binaries themselves links.
step "end-to-end: the real definition in moto's engine, the real handlers (tests/e2e)"
AGENTBUILD_LOCAL_BUILD_TESTS=1 bash scripts/e2e.sh

step "all checks passed in $((SECONDS - T0)) s"
