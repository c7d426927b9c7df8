#!/usr/bin/env bash
# The end-to-end suite (tests/e2e) on the local stack: reuses a running stack, or starts one
# and stops it afterwards — also when a test fails or the run is interrupted. Exits with
# pytest's status. Extra arguments go to pytest (e.g. scripts/e2e.sh -k deadline).
# AGENTBUILD_LOCAL_DIR selects another stack folder (default .local), as for local/stack.py.
#
# Two phases on the one stack: first the scenarios that keep to their own names run concurrently
# (pytest-xdist, AGENTBUILD_E2E_WORKERS processes, default 4: they mostly wait), then the
# `serial` ones (they count or reset what the whole stack does; tests/e2e/conftest.py marks them)
# run one at a time. AGENTBUILD_E2E_WORKERS=0 (or no pytest-xdist) runs everything in one phase.
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

WORKERS="${AGENTBUILD_E2E_WORKERS:-4}"
if [[ "$WORKERS" != 0 ]] && ! "$PY" -c 'import xdist' 2>/dev/null; then
  echo "e2e: pytest-xdist is not installed (make tools): one phase, one test at a time" >&2
  WORKERS=0
fi
rm -f "${AGENTBUILD_LOCAL_DIR:-.local}/announced.jsonl"


set +e
if [[ "$WORKERS" == 0 ]]; then
  "$PY" -m pytest tests/e2e -q "$@"
  status=$?
else
  T=$SECONDS
  echo "e2e: concurrent phase ($WORKERS workers) ..." >&2
  "$PY" -m pytest tests/e2e -q --durations=8 -n "$WORKERS" -m "not serial" "$@"
  first=$?
  echo "e2e: concurrent phase took $((SECONDS - T)) s; serial phase ..." >&2
  T=$SECONDS
  "$PY" -m pytest tests/e2e -q --durations=12 -p no:xdist -m serial "$@"
  second=$?
  echo "e2e: serial phase took $((SECONDS - T)) s" >&2
  # 5 is "no test selected" (e.g. -k picked only the other phase's): a failure only for both.
  if [[ "$first" == 5 && "$second" == 5 ]]; then status=5
  elif [[ "$first" != 0 && "$first" != 5 ]]; then status=$first
  elif [[ "$second" == 5 ]]; then status=0
  else status=$second
  fi
fi
set -e
exit "$status"
