#!/usr/bin/env bash
# `make rebuild`: what the EventBridge schedule does, on the local stack: invoke the rebuild
# function with a Scheduled Event for now, print its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runtime="$(sed -n 's/^AGENTBUILD_RUNTIME_URL=//p' .local/env)"
event="$(python3 - <<'PY'
import json, datetime
e = json.load(open("events/rebuild/scheduled.json"))
e["time"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps(e))
PY
)"
curl -sS --fail-with-body -X POST "$runtime/2015-03-31/functions/rebuild/invocations" \
  -H 'content-type: application/json' -d "$event"
echo
