#!/usr/bin/env bash
# `make test`: every check, in order of cost. Starts the local stack for the end-to-end tests
# when none is running and stops what it started — also when a step fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
T0=$SECONDS
step() { printf '\n== %s (%d s so far)\n' "$*" "$((SECONDS - T0))"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# Offline, no credentials: unit, adapter (aws-smithy-mocks) and contract tests.
step "cargo test --workspace"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  -u AWS_ENDPOINT_URL AWS_EC2_METADATA_DISABLED=true cargo test --workspace --quiet

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
