#!/usr/bin/env bash
# The end-to-end suite (tests/e2e) on the local stack: reuses a running stack, or starts one
# and stops it afterwards — also when a test fails or the run is interrupted. Exits with
# pytest's status. Extra arguments go to pytest (e.g. scripts/e2e.sh -k deadline).
# AGENTBUILD_LOCAL_DIR selects another stack folder (default .local), as for local/stack.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[[ -x "$PY" ]] || bash scripts/tools.sh

started=""
stop_stack() {
  if [[ -n "$started" ]]; then
    echo "e2e: stopping the local stack it started" >&2
    python3 local/stack.py down >&2 || true
  fi
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

if python3 local/stack.py status >/dev/null 2>&1; then
  echo "e2e: reusing the running local stack (make local-down local-up picks up code changes)" >&2
else
  echo "e2e: starting the local stack ..." >&2
  started=1
  "$PY" local/stack.py up >/dev/null
fi

set +e
"$PY" -m pytest tests/e2e -q "$@"
status=$?
set -e
exit "$status"
