#!/usr/bin/env bash
# `make demo [REQUEST=file.json]`: one build of the sample agent (or of your request) through
# the local stack, with the CLI's live progress on stderr and the record as the last stdout line.
# Reuses a running stack, or starts one and stops it afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUEST="${REQUEST:-}"

started=""
stop_stack() { if [[ -n "$started" ]]; then python3 local/stack.py down >&2 || true; fi; }
trap stop_stack EXIT
if ! python3 local/stack.py status >/dev/null 2>&1; then
  echo "demo: starting the local stack (first time: builds the handlers) ..." >&2
  .venv/bin/python local/stack.py up >&2
  started=1
fi
cargo build --quiet -p agentbuild-cli --bin agentbuild
cli=target/debug/agentbuild

cat >&2 <<'NOTE'
demo: AWS is emulated by moto on 127.0.0.1. Its CodeBuild does not run docker: a build is
      reported SUCCEEDED on the first check, with no image digest (image.digest is null).
      Everything else — the state machine, the handlers, S3 records — is the real thing.
NOTE

# Each `make demo` is a new submission: a fresh idempotency key, so an unchanged source is
# REUSED by a new execution instead of answered with the earlier execution.
key=(--idempotency-key "demo-$(date -u +%Y%m%dT%H%M%S)-$$")
if [[ -n "$REQUEST" ]]; then
  grep -q '"idempotencyKey"' "$REQUEST" && key=()
  set +e
  "$cli" submit --request "$REQUEST" "${key[@]}" --wait --output json
else
  set +e
  "$cli" submit examples/sample-agent --project demo --agent sample-agent \
    --build-arg PYTHON_VERSION=3.12 "${key[@]}" --wait --output json
fi
status=$?
set -e
exit "$status"
