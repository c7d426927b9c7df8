"""examples/python-caller runs against the local stack, as its README says, so it cannot rot:
a subprocess with the stack's env and the key of an IAM user whose only policy is the
template's ExampleCallerPolicy for its project. It uploads with boto3's upload_file, submits
to the project-scoped route (SigV4 by botocore, checked by the front door), waits for Build
Finished through an SQS queue its EventBridge rule fills (moto delivers the events our
handlers put to SQS targets), and prints the live agent."""
from __future__ import annotations

import json
import os
import subprocess

from conftest import ROOT, Stack, uid

CALLER = ROOT / "examples" / "python-caller" / "caller.py"


def run_caller(stack: Stack, credentials: tuple[str, str], *args: str) -> tuple[int, dict, str]:
    env = {**os.environ, **stack.env,
           "AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}
    env.pop("AWS_SESSION_TOKEN", None)
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(CALLER), *args], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=240)
    lines = p.stdout.strip().splitlines()
    assert lines, f"no stdout (exit {p.returncode}); stderr: {p.stderr[-3000:]}"
    return p.returncode, json.loads(lines[-1]), p.stderr


def test_the_python_caller_builds_deploys_and_prints_the_live_agent(stack):
    project = f"e2e-py-{uid()}"
    caller = stack.caller(project)
    code, out, err = run_caller(stack, caller, "--project", project, "--agent", "sample-agent",
                                "--context", "examples/sample-agent", "--deploy", "--timeout", "180")
    assert code == 0, (out, err[-3000:])
    assert out["status"] in ("SUCCEEDED", "REUSED"), out
    deployment = out["deployment"]
    assert deployment["status"] == "READY" and deployment["runtimeArn"].startswith("arn:"), deployment
    assert out["record"]["buildId"] == out["buildId"] and out["record"]["deployment"]["runtimeArn"] == deployment["runtimeArn"]
    rec = stack.record(out["buildId"])
    assert rec["project"] == project and rec["source"]["key"].startswith(f"sources/{project}/sample-agent/")


def test_the_python_caller_is_refused_another_projects_route(stack):
    caller = stack.caller(f"e2e-py-{uid()}")
    other = f"e2e-py-other-{uid()}"
    code, out, _ = run_caller(stack, caller, "--project", other, "--agent", "sample-agent",
                              "--context", "examples/sample-agent", "--timeout", "5")
    assert code == 2 and out["http"] == 403 and out["answer"] == {"message": "Forbidden"}, out
