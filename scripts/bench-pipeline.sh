#!/usr/bin/env bash
# `make bench-pipeline`: scripts/bench_pipeline.py on the local stack — reuses a running stack,
# or starts one and stops it afterwards. AGENTBUILD_LOCAL_DIR selects another stack folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[[ -x "$PY" ]] || bash scripts/tools.sh
started=""
stop_stack() { if [[ -n "$started" ]]; then python3 local/stack.py down >&2 || true; fi; }
trap stop_stack EXIT
trap 'exit 130' INT TERM
if ! python3 local/stack.py status >/dev/null 2>&1; then
  echo "bench-pipeline: starting the local stack ..." >&2
  started=1
  "$PY" local/stack.py up >/dev/null
fi
"$PY" scripts/bench_pipeline.py
