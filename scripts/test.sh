#!/usr/bin/env bash
# `make test`: every check, in order of cost. Starts the local stack for the end-to-end tests
# when none is running and stops what it started — also when a step fails. Ends with a table of
# each step's wall time (also when a step fails: the steps so far, the failed one marked).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
T0=$SECONDS

# Scratch space on RAM-backed /dev/shm (TEST_TMP, TMPDIR; scripts/test-tmpdir.sh), removed when
# the run ends (on_exit, once the side checks have stopped; the e2e stacks are stopped by then).
source scripts/test-tmpdir.sh

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
  for i in "${!SIDE_NAMES[@]}"; do
    printf '%-28s %8d  (beside the build, from the start)\n' "  ${SIDE_NAMES[$i]}" "${SIDE_SECONDS[$i]}"
  done
  printf '%-28s %8d\n' "total" "$((SECONDS - T0))"
}
SIDE_NAMES=() SIDE_SECONDS=()
on_exit() {
  local rc=$?
  # The side checks are their own process group (set -m when started): all of it stops.
  if [[ -n "${SIDE_PID:-}" ]]; then
    kill -TERM -- "-$SIDE_PID" 2>/dev/null || true
    wait "$SIDE_PID" 2>/dev/null || true
  fi
  local failed=""
  if [[ "$rc" != 0 && -n "$STEP_KEY" ]]; then failed="$STEP_KEY"; else end_step; fi
  print_table "$failed" >&2
  if [[ -n "$TEST_TMP" ]]; then rm -rf -- "$TEST_TMP" 2>/dev/null || true; fi
  exit "$rc"
}

# Beside the Rust build, in the background from the start: the pinned tools install (uv, npm,
# rustup; mostly network), then the checks that need only them — the static checks, the
# buildspec harness and policy tests, the stack glue — run one after another (they mostly wait
# on pip, bash and subprocesses while cargo keeps the cores busy). Their output is printed, and
# their steps join the table, when the Rust steps are done; the end-to-end suite needs both.
mkdir -p target
SIDE_LOG=target/side-checks.log
SIDE_TIMES=target/side-checks.times
SIDE_FAILED=target/side-checks.failed
TOOLS_READY=target/tools.ready
rm -f "$SIDE_TIMES" "$SIDE_FAILED" "$TOOLS_READY"
side_checks() {
  local t
  side_step() {  # key, command...: runs it, records its seconds, stops at the first failure
    local key="$1"; shift
    t=$SECONDS
    printf '\n== %s\n' "$key"
    if ! "$@"; then
      echo "$key" >"$SIDE_FAILED"
      printf '%s\t%d\n' "$key (FAILED)" "$((SECONDS - t))" >>"$SIDE_TIMES"
      return 1
    fi
    printf '%s\t%d\n' "$key" "$((SECONDS - t))" >>"$SIDE_TIMES"
  }
  side_step "tools install" bash scripts/tools.sh || return 1
  touch "$TOOLS_READY"
  # asl-validator on the substituted definitions; cfn-lint (twice: both parameter sets), checkov.
  side_step "static checks" bash -c 'bash scripts/validate-asl.sh && bash scripts/check-template.sh' || return 1
  # buildspec.yml's commands run as CodeBuild runs them (one bash, starting in a trapped
  # context), with stand-in aws/docker; independent (tmp_path each), so 4 at a time. Then the
  # bucket and caller policies, evaluated offline.
  side_step harness bash -c '"$0" -m pytest tests/buildspec -q --durations=5 -n 4 && "$0" -m pytest tests/policy -q' "$PY" || return 1
  side_step glue "$PY" -m pytest local -q || return 1
}
cargo --version >/dev/null  # the toolchain is in place before tools.sh asks rustup for targets
set -m
side_checks >"$SIDE_LOG" 2>&1 &
SIDE_PID=$!
set +m
trap on_exit EXIT
wait_for_tools() {  # the end-to-end suite needs the tools, not the other side checks
  while [[ ! -f "$TOOLS_READY" ]]; do
    if [[ -f "$SIDE_FAILED" ]] || ! kill -0 "$SIDE_PID" 2>/dev/null; then wait_for_side_checks; fi
    sleep 1
  done
}
wait_for_side_checks() {
  local rc=0 key secs
  wait "$SIDE_PID" || rc=$?
  cat "$SIDE_LOG"
  if [[ -f "$SIDE_TIMES" ]]; then
    while IFS=$'\t' read -r key secs; do SIDE_NAMES+=("$key") SIDE_SECONDS+=("$secs"); done <"$SIDE_TIMES"
  fi
  if [[ "$rc" != 0 ]]; then
    echo "make test: $(cat "$SIDE_FAILED" 2>/dev/null || echo 'a side check') failed (log above)" >&2
    exit 1
  fi
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
# Every target `cargo clippy --all-targets` lints but functions/<name>'s one-line main.rs files:
# the test binaries (and benches, built as tests) here, then the binaries, in the same features (one test target selected; see
# local/agentbuild_local/handlers.py): the CLI, agentbuild-codezip and agentbuild-handlers — every
# Lambda in one binary, the one the local stack runs. functions/<name>'s own binaries (what AWS
# runs, `make package`) are each one call of the same `handlers::<module>::main`, which
# tests/tests/contracts/template.rs holds them to: twelve more links for nothing new here.
step build "build with clippy -D warnings (test binaries and benches, then the binaries)"
# (`--tests` and `--benches` would also build a test binary of every lib and bin, `test = false`
# or not: the bench targets are named instead.)
export_offline cargo test --workspace --quiet --no-run --timings
export_offline cargo test --workspace --bench '*' --quiet --no-run
export_offline cargo build --workspace --bin agentbuild --bin agentbuild-codezip \
  --bin agentbuild-handlers --test hostile --quiet

step unit "cargo test --workspace (run)"
export_offline cargo test --workspace --quiet

# Starts the local stack if none runs and stops what it started, whatever happens.
# The stack builds the handlers in the test build's features and environment: after the build
# step nothing but the handler binaries themselves compiles. It runs while the side checks
# finish (on a warm machine they are still going: ~2 min).
step tools "tools (installed beside the build since the start; this is the wait)"
wait_for_tools
step e2e "end-to-end: the real definition in moto's engine, the real handlers (tests/e2e)"
bash scripts/e2e.sh

step checks "the side checks (static checks, harness, glue: beside the build and the e2e suite; this is the wait)"
wait_for_side_checks

end_step
printf '\n== all checks passed in %d s\n' "$((SECONDS - T0))"
