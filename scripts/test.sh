#!/usr/bin/env bash
# `make test`: every check, in order of cost. Starts the local stack for the end-to-end tests
# when none is running and stops what it started — also when a step fails. Ends with a table of
# each step's wall time (also when a step fails: the steps so far, the failed one marked).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
T0=$SECONDS

# The step table: `step KEY TITLE` ends the step before and starts KEY.
STEP_NAMES=() STEP_SECONDS=() STEP_KEY="" STEP_T0=0
end_step() {
  if [[ -n "$STEP_KEY" ]]; then
    STEP_NAMES+=("$STEP_KEY") STEP_SECONDS+=("$((SECONDS - STEP_T0))")
    STEP_KEY=""
  fi
}
step() {
  end_step
  STEP_KEY="$1" STEP_T0=$SECONDS
  printf '\n== %s (%d s so far)\n' "$2" "$((SECONDS - T0))"
}
print_table() {
  local failed="$1" i
  printf '\n%-28s %8s\n' "make test: step" "seconds"
  for i in "${!STEP_NAMES[@]}"; do
    printf '%-28s %8d\n' "${STEP_NAMES[$i]}" "${STEP_SECONDS[$i]}"
  done
  if [[ -n "$failed" ]]; then
    printf '%-28s %8d  FAILED\n' "$failed" "$((SECONDS - STEP_T0))"
  fi
  if [[ -n "${TOOLS_SECONDS:-}" ]]; then
    printf '%-28s %8d  (in the background from the start)\n' "tools install" "$TOOLS_SECONDS"
  fi
  printf '%-28s %8d\n' "total" "$((SECONDS - T0))"
}
on_exit() {
  local rc=$?
  kill "$TOOLS_PID" 2>/dev/null || true
  local failed=""
  if [[ "$rc" != 0 && -n "$STEP_KEY" ]]; then failed="$STEP_KEY"; else end_step; fi
  print_table "$failed" >&2
  exit "$rc"
}

# The pinned tools (pip, npm, rustup; mostly network) install while the Rust steps compile, which
# need none of them; every later step waits for them. On a fresh machine this hides ~3.5 min.
mkdir -p target
TOOLS_LOG=target/tools.log
TOOLS_END=target/tools.end
rm -f "$TOOLS_END"
TOOLS_START=$(date +%s)
(bash scripts/tools.sh && date +%s >"$TOOLS_END") >"$TOOLS_LOG" 2>&1 &
TOOLS_PID=$!
trap on_exit EXIT
wait_for_tools() {
  if ! wait "$TOOLS_PID"; then
    cat "$TOOLS_LOG" >&2
    echo "make test: scripts/tools.sh failed (log above)" >&2
    exit 1
  fi
  TOOLS_SECONDS=$(($(cat "$TOOLS_END") - TOOLS_START))
  tail -n 1 "$TOOLS_LOG"
}

step fmt "rustfmt"
cargo fmt --all -- --check

# One compile for clippy and the tests (scripts/cargo-env.sh): clippy-driver wraps rustc for the
# workspace's own crates while the test build compiles them, so `-D warnings` and every clippy
# lint of `cargo clippy --all-targets` apply, and the dependencies compile once, not once
# checked for clippy and again built for the tests. The stack's handler build below and
# `make demo` use the same environment: nothing compiles twice.
source scripts/cargo-env.sh

# Offline, no credentials: unit, adapter (aws-smithy-mocks) and contract tests.
export_offline() {
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    -u AWS_ENDPOINT_URL AWS_EC2_METADATA_DISABLED=true "$@"
}
# Every target `cargo clippy --all-targets` lints: the test binaries (and benches, built as
# tests) here, then the binaries themselves (the handlers the local stack runs, the CLI), in the
# same features (one test target selected; see local/agentbuild_local/handlers.py).
step build "build with clippy -D warnings (test binaries and benches, then the binaries)"
export_offline cargo test --workspace --tests --benches --quiet --no-run --timings
export_offline cargo build --workspace --bins --test modules --quiet

step unit "cargo test --workspace (run)"
export_offline cargo test --workspace --quiet

step tools "tools (installed in the background since the start; this is the wait)"
wait_for_tools

step "static checks" "state machine definition (asl-validator); template (cfn-lint, sam validate --lint, checkov)"
bash scripts/validate-asl.sh
bash scripts/check-template.sh

# buildspec.yml's commands run as CodeBuild runs them (one bash, starting in a trapped context),
# with stand-in aws/docker; plus the template's repositories and pinned images.
step harness "buildspec harness (pytest tests/buildspec); bucket policy, evaluated offline (pytest tests/policy)"
"$PY" -m pytest tests/buildspec -q
"$PY" -m pytest tests/policy -q

step glue "local stack glue (pytest local)"
"$PY" -m pytest local -q

# Starts the local stack if none runs and stops what it started, whatever happens.
# The stack builds the handlers in the test build's features and environment: after the build
# step nothing but the handler binaries themselves compiles.
step e2e "end-to-end: the real definition in moto's engine, the real handlers (tests/e2e)"
bash scripts/e2e.sh

end_step
printf '\n== all checks passed in %d s\n' "$((SECONDS - T0))"
