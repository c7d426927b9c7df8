"""The local stack as the end-to-end tests see it: the `stack` fixture (a client of moto, the
injection endpoint and the API), and helpers that read an execution's history. Shared by every
test module in tests/e2e (see test_pipeline.py's docstring for what they need running).

Two phases (scripts/e2e.sh): most scenarios run concurrently on one stack (pytest-xdist,
`-m "not serial"`) — each uses its own project, agent and execution names, and its injections
and CodeBuild scripts `match` on them; then the scenarios that read or flip stack-wide state run
one at a time (`-m serial`). A test is `serial` when it, or a fixture it uses, calls one of
STACK_WIDE (or carries the mark itself): see `pytest_collection_modifyitems`."""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("AGENTBUILD_LOCAL_DIR") or ROOT / ".local").resolve()

# Stack-wide state, in the source of a test or of a fixture it uses: every build or execution
# counted or awaited (another test's would count), every injection and script cleared, the
# handlers' configuration or the state machine's definition changed.
STACK_WIDE = ("wait_idle(", "build_count(", ".running(", ".reset(", "/config\", {",
              "update_state_machine(")


# The fixtures that handle concurrency themselves (they reset only when alone on the stack).
PLUMBING = {"stack", "clean_injections"}


def concurrent() -> bool:
    """Running as one of several pytest-xdist workers on the same stack."""
    return "PYTEST_XDIST_WORKER" in os.environ


def _source(fn: Any) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Marks `serial` every test whose own source or whose fixtures' source touches STACK_WIDE."""
    for item in items:
        if item.get_closest_marker("serial"):
            continue
        sources = [_source(getattr(item, "function", None))]
        for name, defs in item._fixtureinfo.name2fixturedefs.items():
            if name not in PLUMBING:
                sources += [_source(d.func) for d in defs]
        if any(call in src for src in sources for call in STACK_WIDE):
            item.add_marker(pytest.mark.serial)
    if concurrent():
        # Longest files first (the same order in every worker, as xdist requires; each file's
        # own order kept): they head the first worker's slice (xdist splits the list into
        # contiguous slices) and, with `--dist worksteal` (scripts/e2e.sh), idle workers steal
        # from the far end of the busiest queue: long tests start early, short ones fill gaps.
        items.sort(key=lambda item: SLOW_FIRST.index(item.path.name) if item.path.name in SLOW_FIRST
                   else len(SLOW_FIRST))


# The concurrent lane's files with its longest tests (scripts/e2e.sh prints each lane's slowest).
SLOW_FIRST = ["test_layer_build.py", "test_deploy.py", "test_deploy_prebuilt.py", "test_access.py",
              "test_python_caller.py", "test_cancel.py", "test_runtimes.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: reads or flips stack-wide state; runs alone "
                                       "(scripts/e2e.sh runs these after the concurrent phase)")


def polls(first: float = 0.05, last: float = 0.25):
    """The pauses between two looks at moto while waiting: short at first (most waits are
    short), growing to `last`. The suite's five stacks share two cores and every look costs
    the server a request: a wait of 10 s makes ~45 requests instead of 100 at 0.1 s."""
    pause = first
    while True:
        yield pause
        pause = min(last, pause * 1.5)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def parse_time(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (the records') -> aware datetime."""
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, f"not an RFC 3339 time: {text!r}"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


# ---------------------------------------------------------------------------------------------
# The stack, as a client sees it
# ---------------------------------------------------------------------------------------------

class Stack:
    def __init__(self, env: dict[str, str]):
        import boto3

        self.env = env
        kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                  aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                  aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        self.s3 = boto3.client("s3", **kw)
        self.sfn = boto3.client("stepfunctions", **kw)
        self.codebuild = boto3.client("codebuild", **kw)
        self.bucket = env["AGENTBUILD_BUCKET"]
        self.machine = env["AGENTBUILD_STATE_MACHINE_ARN"]
        self.project = env["AGENTBUILD_CODEBUILD_PROJECT"]
        self.inject_url = env["AGENTBUILD_INJECT_URL"]
        self.started: set[str] = set()  # execution ARNs this session started (for teardown)

    # -- HTTP --------------------------------------------------------------------------------

    # The API's front door checks SigV4 and the caller's IAM policies as API Gateway does
    # (local/agentbuild_local/front_door.py): calls to it are signed, by default with the
    # stack's own key (the account's administrator); `credentials` = (key id, secret) of
    # another caller.
    api_url: str | None = None

    @staticmethod
    def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None, credentials: tuple[str, str] | None = None,
             sign: bool = True) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json", **(headers or {})}
        if sign and Stack.api_url and url.startswith(Stack.api_url):
            headers = signed(method, url, data, headers, credentials or ("local", "local"))
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), dict(e.headers)
        try:
            return status, json.loads(raw or b"null"), {k.lower(): v for k, v in hdrs.items()}
        except ValueError:
            return status, raw.decode("utf-8", "replace"), {k.lower(): v for k, v in hdrs.items()}

    def caller(self, project: str) -> tuple[str, str]:
        """A new IAM user (in moto) whose one policy is template.yaml's ExampleCallerPolicy for
        `project`, resolved for the local API (api id AGENTBUILD_API_ID) and bucket; its
        access key (id, secret). The front door evaluates that policy for its calls."""
        import boto3

        iam = boto3.client("iam", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                           region_name=self.env["AWS_REGION"], aws_access_key_id="local",
                           aws_secret_access_key="local")
        name = f"caller-{project}-{uid()}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="agentbuild-caller",
                            PolicyDocument=json.dumps(caller_policy(project, self.env)))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def project_of(self, build_id: str) -> str | None:
        """The project a build belongs to, as the API decides it: its record's, else its
        execution input's (a rebuild: the rebuilt record's)."""
        if rec := self.record(build_id):
            return rec["project"]
        arn = self.machine.replace(":stateMachine:", ":execution:") + f":{build_id}"
        try:
            given = json.loads(self.sfn.describe_execution(executionArn=arn)["input"])
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return None
        if "rebuild" in given:
            return self.project_of(given["rebuild"]["buildId"])
        return given.get("request", given).get("project")

    def build_path(self, build_id: str, project: str | None = None) -> str:
        """The build's route: /projects/<its project>/builds/<id> (an unknown id: project e2e)."""
        return f"/projects/{project or self.project_of(build_id) or 'e2e'}/builds/{build_id}"

    def inject(self, function: str, entry: Any) -> None:
        status, body, _ = self.http("POST", f"{self.inject_url}/functions/{function}/queue", entry)
        assert status == 200, body

    def script(self, entry: dict[str, Any]) -> None:
        """A CodeBuild script (local/README.md): hold / polls / status / failedPhase / exported."""
        status, body, _ = self.http("POST", f"{self.inject_url}/codebuild/scripts", entry)
        assert status == 200, body

    def release(self, match: str) -> list[str]:
        status, body, _ = self.http("POST", f"{self.inject_url}/codebuild/release", {"match": match})
        assert status == 200, body
        return body["released"]

    def reset(self) -> None:
        """Clears every injection, script and hold on the stack: `serial` tests only."""
        assert not concurrent(), "reset() clears other workers' injections: mark the test serial"
        status, body, _ = self.http("DELETE", f"{self.inject_url}/")
        assert status == 200, body

    def invocations(self, function: str, match: str = "") -> list[dict[str, Any]]:
        """The bridge's log of `function`'s invocations whose request contains `match`."""
        calls = self.http("GET", f"{self.inject_url}/functions/{function}/invocations")[1]
        return [c for c in calls if match in json.dumps(c["request"])]

    # -- S3 ----------------------------------------------------------------------------------

    def upload_source(self, project: str, agent: str, extra: str = "") -> tuple[str, str]:
        """A tiny build context at its content address; (s3 uri, sha256)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("Dockerfile", f"FROM public.ecr.aws/docker/library/python:3.12-slim\n# {extra}\n")
            z.writestr("app.py", f"print('agent {project}/{agent} {extra}')\n")
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        key = f"sources/{project}/{agent}/{sha}.zip"
        # As the CLI uploads: a plain PutObject (what is kept is the service's to decide).
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}", sha

    def request(self, project: str | None = None, agent: str = "agent") -> dict[str, Any]:
        project = project or f"e2e-{uid()}"
        uri, _ = self.upload_source(project, agent)
        return {"project": project, "agent": agent, "source": uri}

    def get_json(self, key: str) -> Any | None:
        try:
            return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None

    def get_bytes(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def record(self, build_id: str) -> dict[str, Any] | None:
        return self.get_json(f"builds/{build_id}.json")

    def wait_record(self, build_id: str, statuses: tuple[str, ...], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        rec, pauses = None, polls()
        while time.monotonic() < deadline:
            rec = self.record(build_id)
            if rec and rec["status"] in statuses:
                return rec
            time.sleep(next(pauses))
        raise AssertionError(f"builds/{build_id}.json not {statuses} after {timeout} s: {rec}")

    def wait_started(self, build_id: str, timeout: float = 20) -> dict[str, Any]:
        """The RUNNING record that names the CodeBuild build (StartBuild writes a marker without
        one before it calls CodeBuild: `wait_record(id, ("RUNNING",))` may return that)."""
        deadline = time.monotonic() + timeout
        rec = None
        while time.monotonic() < deadline:
            rec = self.record(build_id)
            if rec and (rec["status"] != "RUNNING" or rec["codebuild"].get("buildId")):
                assert rec["status"] == "RUNNING", f"builds/{build_id}.json ended before: {rec}"
                return rec
            time.sleep(0.2)
        raise AssertionError(f"builds/{build_id}.json names no CodeBuild build after {timeout} s: {rec}")

    def codebuild_scripted(self) -> list[dict[str, Any]]:
        """Every build a CodeBuild script bound to: {id, match (the script's), polls, state}."""
        status, body, _ = self.http("GET", f"{self.inject_url}/codebuild")
        assert status == 200, body
        return body["builds"]

    # -- Step Functions ----------------------------------------------------------------------

    def start(self, name: str, execution_input: Any) -> str:
        arn = self.sfn.start_execution(stateMachineArn=self.machine, name=name,
                                       input=json.dumps(execution_input))["executionArn"]
        self.started.add(arn)
        return arn

    def wait(self, arn: str, timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        pauses = polls()
        while time.monotonic() < deadline:
            d = self.sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING":
                return d
            time.sleep(next(pauses))
        raise AssertionError(f"{arn} still RUNNING after {timeout} s")

    def run(self, name: str, execution_input: Any, timeout: float = 40) -> dict[str, Any]:
        return self.wait(self.start(name, execution_input), timeout)

    def history(self, arn: str) -> list[dict[str, Any]]:
        events, token = [], None
        while True:
            page = self.sfn.get_execution_history(executionArn=arn, maxResults=1000,
                                                  **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def running(self) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.machine, statusFilter="RUNNING")
        return [e for p in pages for e in p["executions"]]

    def wait_idle(self, timeout: float = 30) -> None:
        """No execution of the build machine running (counting CodeBuild builds needs quiet)."""
        deadline = time.monotonic() + timeout
        while (busy := self.running()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not busy, f"executions still running: {[e['name'] for e in busy]}"

    # -- CodeBuild ---------------------------------------------------------------------------

    def build_count(self) -> int:
        return len(self.codebuild.list_builds_for_project(projectName=self.project)["ids"])

    def build(self, build_id: str) -> dict[str, Any]:
        """BatchGetBuilds — only for scripted builds: moto flips any other build SUCCEEDED."""
        return self.codebuild.batch_get_builds(ids=[build_id])["builds"][0]


_TEMPLATE: list[dict[str, Any]] = []


def caller_policy(project: str, env: dict[str, str]) -> dict[str, Any]:
    """template.yaml's ExampleCallerPolicy document (SAM-transformed, intrinsics resolved by
    tests/policy/evaluator.py) for `project`, on the local API and bucket."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "policy"))
    from evaluator import BUCKET, resolve

    if not _TEMPLATE:
        out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "scripts/sam_transform.py",
                              "template.yaml"], cwd=ROOT, check=True, capture_output=True, text=True)
        _TEMPLATE.append(json.loads(out.stdout))
    raw = _TEMPLATE[0]
    params = {k: p.get("Default") for k, p in raw.get("Parameters", {}).items()}
    params.update(CallerPolicyProject=project, BuildApi=env.get("AGENTBUILD_API_ID", "local"))
    doc = resolve(raw["Resources"]["ExampleCallerPolicy"]["Properties"]["PolicyDocument"], params)
    return json.loads(json.dumps(doc).replace(BUCKET, env["AGENTBUILD_BUCKET"]))


def signed(method: str, url: str, data: bytes | None, headers: dict[str, str],
           credentials: tuple[str, str]) -> dict[str, str]:
    """`headers` plus SigV4 for execute-api (botocore's signer, as the example caller uses)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    SigV4Auth(Credentials(*credentials), "execute-api", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if "=" in line and not line.startswith("#"))


def find_stack() -> tuple[dict[str, str] | None, str]:
    env_file = STATE_DIR / "env"
    if not env_file.exists():
        return None, f"no {env_file}"
    env = read_env(env_file)
    try:
        for url in (f"{env['AGENTBUILD_INJECT_URL']}/health", f"{env['AWS_ENDPOINT_URL']}/moto-api/config"):
            with urllib.request.urlopen(url, timeout=3):
                pass
    except (OSError, KeyError, urllib.error.URLError) as e:
        return None, f"{env_file} exists but the stack does not answer ({e})"
    return env, ""


@pytest.fixture(scope="session")
def stack():
    env, why = find_stack()
    if env is None:
        msg = (f"no local stack is running ({why}); start one with `make local-up` "
               f"(or run scripts/e2e.sh, which starts and stops one)")
        # A missing stack is a failure, never a skip: a green run must mean these tests ran.
        pytest.fail(msg, pytrace=False)
    status, body, _ = Stack.http("GET", f"{env['AGENTBUILD_INJECT_URL']}/codebuild")
    if status != 200:
        pytest.fail("the running stack has no CodeBuild scripts (GET /codebuild answered "
                    f"{status}); it predates them: make local-down local-up", pytrace=False)
    Stack.api_url = env.get("AGENTBUILD_API_URL")
    s = Stack(env)
    yield s
    # Leave nothing running: release every held build (alone on the stack: other workers' holds
    # are theirs), stop what this session started.
    if not concurrent():
        s.reset()
    for arn in s.started:
        if s.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            s.sfn.stop_execution(executionArn=arn)


@pytest.fixture(autouse=True)
def clean_injections(request):
    # Concurrent tests leave each other's injections alone (theirs match their own names).
    if "stack" in request.fixturenames and not concurrent():
        request.getfixturevalue("stack").reset()


# ---------------------------------------------------------------------------------------------
# History helpers
# ---------------------------------------------------------------------------------------------

def scheduled(events: list[dict[str, Any]], function: str) -> int:
    """How many times the engine invoked `function` (retries included)."""
    n = 0
    for e in events:
        if e["type"] == "TaskScheduled":
            params = json.loads(e["taskScheduledEventDetails"]["parameters"])
            n += params.get("FunctionName") == function
    return n


def failures(events: list[dict[str, Any]]) -> list[str]:
    """The error of every failed Task attempt, in order (TaskFailed / LambdaFunctionFailed)."""
    out = []
    for e in events:
        if e["type"] in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut"):
            details = next(v for k, v in e.items() if k.endswith("EventDetails"))
            out.append(details.get("error"))
    return out


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def ended(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[-1]


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `agentbuild` binary, built once per session, in the test build's features and
    environment (one test target selected, as the stack's handlers are): after `make test`'s
    build step it is already there and nothing compiles."""
    cmd = ["cargo", "build", "-q", "--workspace", "--bin", "agentbuild", "--test", "hostile"]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=900)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                                     cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    return Path(meta["target_directory"]) / "debug" / "agentbuild"
