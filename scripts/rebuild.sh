#!/usr/bin/env bash
# `make rebuild`: one fleet rebuild on the local stack — what the schedule starts: an execution
# of the fleet-rebuild machine (statemachine/rebuild.asl.json). Waits for it, shows progress on
# stderr, and prints its summary (rebuilds/<run>.json) as the last stdout line.
# REBUILD_INPUT='{"projects": ["demo"]}' rebuilds a selection; the default is every agent.
# Exit 0 when the run completed (or was skipped: another run held the lock), 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
state_dir="${AGENTBUILD_LOCAL_DIR:-.local}"
REBUILD_INPUT="${REBUILD_INPUT:-{\}}" exec .venv/bin/python - "$state_dir/env" <<'PY'
import json, os, sys, time, uuid

import boto3

env = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines() if "=" in l)
kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
          aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
sfn, s3 = boto3.client("stepfunctions", **kw), boto3.client("s3", **kw)
machine = env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]
arn = sfn.start_execution(stateMachineArn=machine, name=f"make-rebuild-{uuid.uuid4().hex[:12]}",
                          input=os.environ["REBUILD_INPUT"])["executionArn"]
print(f"rebuild: started {arn}", file=sys.stderr)
started, last = time.monotonic(), None
while (d := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
    running = len(sfn.list_executions(stateMachineArn=env["AGENTBUILD_STATE_MACHINE_ARN"],
                                      statusFilter="RUNNING")["executions"])
    line = f"rebuild: {time.monotonic() - started:.0f} s, {running} build executions running"
    if line != last:
        print(line, file=sys.stderr)
        last = line
    time.sleep(1)
print(f"rebuild: {d['status']} after {time.monotonic() - started:.1f} s", file=sys.stderr)
summary = json.loads(d["output"]) if d.get("output") else None
if summary is None:
    # A failed or aborted run returns no output: its summary, if it got that far, is in S3.
    print(f"rebuild: {d.get('error')}: {d.get('cause')}", file=sys.stderr)
    runs = s3.list_objects_v2(Bucket=env["AGENTBUILD_BUCKET"], Prefix="rebuilds/").get("Contents", [])
    newest = max((o for o in runs if o["Key"].count("/") == 1 and o["Key"] != "rebuilds/lock.json"),
                 key=lambda o: o["LastModified"], default=None)
    if newest is not None:
        summary = json.load(s3.get_object(Bucket=env["AGENTBUILD_BUCKET"], Key=newest["Key"])["Body"])
print(json.dumps(summary))
sys.exit(0 if summary and summary.get("status") in ("COMPLETED", "SKIPPED") else 1)
PY
