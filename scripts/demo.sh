#!/usr/bin/env bash
# `make demo [ARTIFACT=code|container] [REQUEST=file.json]`: one build of a sample agent (or of
# your request) through the local stack, with the CLI's live progress on stderr and the record as
# the last stdout line. Reuses a running stack, or starts one and stops it afterwards.
#
# Default (ARTIFACT=code): examples/code-agent, a real Python agent with real dependencies, as a
# code artifact — its dependency layer built for real (uv, binary wheels for arm64) unless an
# earlier run left it in the bucket, the zip assembled, uploaded versioned and deployed to
# (moto's) AgentCore Runtime with codeConfiguration; it ends with the deployment READY.
# ARTIFACT=container: examples/sample-agent as a container image (moto's CodeBuild, no docker).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUEST="${REQUEST:-}"
ARTIFACT="${ARTIFACT:-code}"
case "$ARTIFACT" in code|container) ;; *) echo "demo: ARTIFACT must be code or container" >&2; exit 2;; esac

# The tools the demo runs (pinned; `scripts/tools.sh demo`: the venvs; checkov, node_modules and
# the Rust cross target come with the first `make test`) install in the background while Rust
# compiles the handlers and the CLI in one cargo call, in `make test`'s features and environment
# (scripts/cargo-env.sh, local/agentbuild_local/handlers.py): a `make test` after it compiles
# only what the demo did not need.
mkdir -p target
TOOLS_LOG=target/tools.log
cargo --version >/dev/null  # installs rust-toolchain.toml's toolchain before cargo-env.sh asks rustup for clippy-driver
set -m  # the tools install is its own process group: an interrupted demo stops all of it
bash scripts/tools.sh demo >"$TOOLS_LOG" 2>&1 &
TOOLS_PID=$!
set +m
started=""
stop_stack() {
  kill -TERM -- "-$TOOLS_PID" 2>/dev/null || true
  if [[ -n "$started" ]]; then python3 local/stack.py down >&2 || true; fi
}
trap stop_stack EXIT
source scripts/cargo-env.sh
echo "demo: compiling the handlers and the CLI (first time: a few minutes) ..." >&2
cargo build --quiet --workspace --bin agentbuild-handlers --bin agentbuild --test hostile
if ! wait "$TOOLS_PID"; then
  cat "$TOOLS_LOG" >&2
  echo "demo: scripts/tools.sh failed (log above)" >&2
  exit 1
fi
if ! python3 local/stack.py status >/dev/null 2>&1; then
  echo "demo: starting the local stack ..." >&2
  .venv/bin/python local/stack.py up --no-build >&2
  started=1
fi
cli=target/debug/agentbuild

if [[ "$ARTIFACT" == container ]]; then
cat >&2 <<'NOTE'
demo: AWS is emulated by moto on 127.0.0.1. Its CodeBuild does not run docker: a build is
      reported SUCCEEDED on the first check, with no image digest (image.digest is null).
      Everything else — the state machine, the handlers, S3 records — is the real thing.
NOTE
else
cat >&2 <<'NOTE'
demo: AWS is emulated by moto on 127.0.0.1. The code artifact's dependency layer is built for
      real (the layer project's buildspec: uv, real wheels from the package index) the first
      time; later runs reuse it and start no CodeBuild build. AgentCore Runtime is moto's.
NOTE
fi

# Each `make demo` is a new submission: a fresh idempotency key, so an unchanged source is
# REUSED by a new execution instead of answered with the earlier execution.
key=(--idempotency-key "demo-$(date -u +%Y%m%dT%H%M%S)-$$")
if [[ -n "$REQUEST" ]]; then
  grep -q '"idempotencyKey"' "$REQUEST" && key=()
  set +e
  "$cli" submit --request "$REQUEST" "${key[@]}" --wait --output json
elif [[ "$ARTIFACT" == code ]]; then
  set +e
  "$cli" submit examples/code-agent --project demo --agent code-agent \
    --deploy "${key[@]}" --wait --output json
else
  set +e
  "$cli" submit examples/sample-agent --project demo --agent sample-agent \
    --build-arg PYTHON_VERSION=3.12 "${key[@]}" --wait --output json
fi
status=$?
set -e
exit "$status"
