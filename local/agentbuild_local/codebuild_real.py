"""Real CodeBuild builds on the local stack: a StartBuild of the layer project (the code path's
dependency layer, buildspec-code.yml) runs that buildspec's commands for real — real pip and uv,
real wheels from the package index, the real zip uploaded to moto's S3 through the stack's
endpoint with the AWS CLI — and reports what happened: phases and their statuses, the exported
variables, CodeBuild's events, and the output in moto's CloudWatch Logs under the build's `logs`
(group and stream), so `agentbuild logs` reads it.

How it runs a buildspec (buildspec version 0.2, `shell: bash`): every command of phases
install, pre_build, build, post_build in order in ONE bash (variables and the directory carry
over, as on CodeBuild and in tests/buildspec's harness); the first failing command fails its
phase and the build (CodeBuild's COMMAND_EXECUTION_ERROR), later phases are skipped. The host's tools stand in for CodeBuild's
Lambda image: `python3` and `aws` from .venv-build (scripts/tools.sh), nothing else on PATH but
the system's directories. The build's own files live in a fresh directory in /dev/shm, or in
the stack's folder when /dev/shm is missing, not writable or short of 2 GB (scratch_base).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .codebuild_events import EventDelivery, phase_changes, state_change
from .config import ACCOUNT, BUCKET, LAYER_PROJECT, REGION, ROOT, STATE_DIR, log

LAYER_BUILDSPEC = ROOT / "buildspec-code.yml"
LAYER_LOG_GROUP = "/aws/codebuild/agentbuild-local"
# What template.yaml's LayerProject sets (its Environment); the index is a stack parameter.
LAYER_ENVIRONMENT = {"type": "ARM_LAMBDA_CONTAINER", "computeType": "BUILD_LAMBDA_2GB",
                     "image": "aws/codebuild/amazonlinux-aarch64-lambda-standard:python3.12"}
LAYER_PROJECT_ENV = {
    "AGENTBUILD_BUCKET": BUCKET,
    "AGENTBUILD_PACKAGE_INDEX": os.environ.get("AGENTBUILD_LOCAL_PACKAGE_INDEX", "https://pypi.org/simple"),
    # cyclonedx-py's self-check of its SBOM (≈ 2.5 s of CPU a build) stays on AWS; tests/buildspec
    # runs it and validates the output against the schema.
    "AGENTBUILD_SBOM_SELF_CHECK": "off",
}
BUILD_TOOLS = ROOT / ".venv-build" / "bin"
SPEC_PHASES = (("install", "INSTALL"), ("pre_build", "PRE_BUILD"), ("build", "BUILD"),
               ("post_build", "POST_BUILD"))
LEADING = ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE")
# A build's files (uv's cache, the tools, the layer: tens of thousands of small files, created
# and deleted) go to RAM-backed /dev/shm when the host has it: on the ext4 disks here, creating
# a file soon after many deletions costs ~0.6 ms of kernel CPU, on tmpfs ~0.04 ms (10,000
# files: 6.0 s against 0.4 s). Named after the stack's folder, so a killed stack's leftovers
# are swept when its next stack starts.
SHM = Path("/dev/shm")
SCRATCH_PREFIX = f"agentbuild-local-{hashlib.sha256(str(STATE_DIR).encode()).hexdigest()[:12]}-layer-build."


def scratch_base() -> Path:
    """/dev/shm if it is a writable directory with 2 GB free (a layer build of a large agent
    takes a few hundred MB; a container's default /dev/shm is 64 MB), else the stack's folder."""
    try:
        free = os.statvfs(SHM)
    except OSError:
        return STATE_DIR
    roomy = free.f_bavail * free.f_frsize >= 2 * 1024**3
    return SHM if roomy and os.access(SHM, os.W_OK | os.X_OK) else STATE_DIR


def remove_tree(path: Path) -> None:
    """`rm -rf` in its own process: deleting thousands of files from a thread of this process
    would hold the GIL that moto's request threads need."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False, stdin=subprocess.DEVNULL)


def sweep_scratch() -> None:
    """Removes what a killed stack of this folder left in the scratch space."""
    for base in (SHM, STATE_DIR):
        for left in base.glob(SCRATCH_PREFIX + "*"):
            remove_tree(left)


def now_iso() -> str:
    from moto.core.utils import iso_8601_datetime_with_milliseconds as iso

    return iso(datetime.utcnow())


def parse_time(text: str) -> datetime:
    from moto.core.parse import default_timestamp_parser

    return default_timestamp_parser(text).replace(tzinfo=None)


def load_spec(path: Path = LAYER_BUILDSPEC) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def host_network() -> dict[str, str]:
    """The host's CA and proxy settings: what a CodeBuild host has of its own network."""
    names = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
             "https_proxy", "http_proxy", "no_proxy")
    return {n: os.environ[n] for n in names if os.environ.get(n)}


def tool_path(work: Path) -> str:
    """PATH of a build: a bin of ours with `python3` and `aws` from .venv-build, then the system's."""
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, target in (("python3", BUILD_TOOLS / "python3"), ("aws", BUILD_TOOLS / "aws")):
        if not target.exists():
            raise RuntimeError(f"{target} is missing: run `make tools` (scripts/tools.sh, .venv-build)")
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).symlink_to(target)
    return f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"


PHASE_MARK = "__AGENTBUILD_PHASE__ "
EXPORT_MARK = "__AGENTBUILD_EXPORT__ "


def shell_script(spec: dict[str, Any]) -> str:
    """Every command of every phase, in order, for ONE bash (as CodeBuild runs buildspec 0.2:
    variables and the directory carry over, the first failing command ends the build), with
    phase marks and, at the end, the exported variables (runner bookkeeping, filtered out of
    the log)."""
    lines = []
    for key, phase in SPEC_PHASES:
        lines.append(f"printf '{PHASE_MARK}%s\\n' {phase}")
        for command in ((spec.get("phases") or {}).get(key) or {}).get("commands") or []:
            first = command.strip().splitlines()[0] if command.strip() else ""
            lines.append(f"printf '[Container] Running command %s\\n' {json.dumps(first)}")
            lines += [command.rstrip("\n"), "agentbuild_rc=$?",
                      'if [ "$agentbuild_rc" -ne 0 ]; then exit "$agentbuild_rc"; fi']
    lines.append(f"printf '{PHASE_MARK}%s\\n' END")
    for name in (spec.get("env") or {}).get("exported-variables") or []:
        lines.append(f"printf '{EXPORT_MARK}%s=%s\\n' {name} \"${{{name}-}}\"")
    return "\n".join(lines) + "\n"


def run_buildspec(spec: dict[str, Any], env: dict[str, str], work: Path, emit,
                  on_phase=None, on_start=None) -> tuple[str, str | None, str, dict[str, str]]:
    """Runs `spec` in one bash in `work`: (status SUCCEEDED | FAILED, the failed phase or None,
    CodeBuild's message for it, the exported variables). `on_phase(phase, "START" | status,
    message)` follows the phases; `on_start(process)` gets the shell (to stop it)."""
    proc = subprocess.Popen(["bash", "-c", shell_script(spec)], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    if on_start is not None:
        on_start(proc)
    phase, exported = None, {}
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith(PHASE_MARK):
            if phase is not None:
                emit(f"[Container] Phase complete: {phase} State: SUCCEEDED")
                if on_phase:
                    on_phase(phase, "SUCCEEDED", "")
            phase = None if line[len(PHASE_MARK):] == "END" else line[len(PHASE_MARK):]
            if phase is not None:
                emit(f"[Container] {time.strftime('%Y/%m/%d %H:%M:%S')} Entering phase {phase}")
                if on_phase:
                    on_phase(phase, "START", "")
        elif line.startswith(EXPORT_MARK):
            name, _, value = line[len(EXPORT_MARK):].partition("=")
            exported[name] = value
        else:
            emit(line)
    rc = proc.wait()
    if rc == 0 and phase is None:
        return "SUCCEEDED", None, "", exported
    message = f"Error while executing command. Reason: exit status {rc}"
    emit(f"[Container] Command did not exit successfully: exit status {rc}")
    emit(f"[Container] Phase complete: {phase} State: FAILED")
    if on_phase and phase is not None:
        on_phase(phase, "FAILED", message)
    return "FAILED", phase, message, {}


class LogShipper:
    """A build's output -> moto's CloudWatch Logs (its group and stream), in batches."""

    def __init__(self, client: Any, group: str, stream: str) -> None:
        self.client, self.group, self.stream = client, group, stream
        self._lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        try:
            client.create_log_group(logGroupName=group)
        except client.exceptions.ResourceAlreadyExistsException:
            pass
        client.create_log_stream(logGroupName=group, logStreamName=stream)

    def emit(self, line: str) -> None:
        with self._lock:
            self._lines.append({"timestamp": int(time.time() * 1000), "message": line or " "})
            full = len(self._lines) >= 200
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                self.client.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                           logEvents=lines)
            except Exception as e:  # noqa: BLE001 - logs are best effort, the build goes on
                log(f"codebuild (real): could not ship {len(lines)} log lines: {e!r}")


class RealBuilds:
    """The layer project's builds, run for real (module docstring). moto's build dict is
    rewritten in place as phases start and end; each change goes out as CodeBuild's events."""

    def __init__(self, events: EventDelivery | None = None) -> None:
        sweep_scratch()
        self.events = events
        self.endpoint = ""
        self._lock = threading.Lock()
        self._builds: dict[str, dict[str, Any]] = {}

    def knows(self, build_id: str) -> bool:
        with self._lock:
            return build_id in self._builds

    def start(self, build: dict[str, Any], request_text: str) -> bool:
        """StartBuild of moto's `build`: False unless it is the layer project's; else the build
        runs in a thread from now on."""
        if build.get("projectName") != LAYER_PROJECT:
            return False
        stream = build["id"].split(":", 1)[1]
        overrides = {v["name"]: v.get("value", "") for v in build["environment"].get("environmentVariables", [])}
        build["environment"] = dict(build["environment"], **LAYER_ENVIRONMENT, privilegedMode=False,
                                    environmentVariables=[{"name": k, "value": v, "type": "PLAINTEXT"}
                                                          for k, v in {**LAYER_PROJECT_ENV, **overrides}.items()])
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LAYER_LOG_GROUP}:log-stream:{stream}"
        build["logs"] = {"groupName": LAYER_LOG_GROUP, "streamName": stream, "cloudWatchLogsArn": arn,
                         "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
                                     f"#logEvent:group={LAYER_LOG_GROUP};stream={stream}",
                         "cloudWatchLogs": {"status": "ENABLED", "groupName": LAYER_LOG_GROUP,
                                            "streamName": stream},
                         "s3Logs": {"status": "DISABLED", "encryptionDisabled": False}}
        t0 = build["startTime"]
        b = {"build": build, "request": request_text, "announced": 0, "proc": None, "stopped": False,
             "phases": [{"phaseType": p, "phaseStatus": "SUCCEEDED", "startTime": t0, "endTime": t0,
                         "durationInSeconds": 0} for p in LEADING]}
        with self._lock:
            self._builds[build["id"]] = b
            self._render(b, None)
        threading.Thread(target=self._run, args=(b, {**LAYER_PROJECT_ENV, **overrides}), daemon=True).start()
        log(f"codebuild (real): {build['id']} runs {LAYER_BUILDSPEC.name}")
        return True

    def _render(self, b: dict[str, Any], final: tuple[str, dict[str, str]] | None) -> None:
        """moto's dict from our phases (lock held); final = (status, exported) at the end."""
        build = b["build"]
        phases = [dict(p) for p in b["phases"]]
        if final is None:
            build.update(phases=phases, currentPhase=phases[-1]["phaseType"], buildStatus="IN_PROGRESS",
                         buildComplete=False, exportedEnvironmentVariables=[])
            build.pop("endTime", None)
            return
        status, exported = final
        end = now_iso()
        phases.append({"phaseType": "COMPLETED", "startTime": end})
        build.update(phases=phases, currentPhase="COMPLETED", buildStatus=status, buildComplete=True,
                     endTime=end, exportedEnvironmentVariables=[{"name": k, "value": v} for k, v in exported.items()])

    def _announce(self, b: dict[str, Any], ended: bool) -> None:
        with self._lock:
            events = phase_changes(b["build"], parse_time, b["announced"])
            b["announced"] += len(events)
            if ended or b["announced"] == len(events):
                events.append(state_change(b["build"], parse_time))
        if self.events is not None and events:
            self.events.send(b["request"], events)

    def _phase(self, b: dict[str, Any], phase: str, status: str, message: str) -> None:
        with self._lock:
            now = now_iso()
            if status == "START":
                b["phases"].append({"phaseType": phase, "startTime": now})
            else:
                p = b["phases"][-1]
                p.update(phaseStatus=status, endTime=now, durationInSeconds=max(
                    0, int((parse_time(now) - parse_time(p["startTime"])).total_seconds())))
                if message:
                    p["contexts"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": message}]
            self._render(b, None)
        if status != "START":
            self._announce(b, False)

    def _run(self, b: dict[str, Any], env_vars: dict[str, str]) -> None:
        from .engine import aws_client

        build = b["build"]
        work = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch_base()))
        shipper = LogShipper(aws_client("logs", self.endpoint), LAYER_LOG_GROUP, build["logs"]["streamName"])
        env = {"PATH": tool_path(work), "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"), "LANG": "C.UTF-8",
               "CODEBUILD_BUILD_ID": build["id"], "CODEBUILD_BUILD_ARN": build["arn"],
               "CODEBUILD_SRC_DIR": str(work / "src"), "AWS_ENDPOINT_URL": self.endpoint,
               "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", **host_network(), **env_vars}
        for d in ("home", "tmp", "src"):
            (work / d).mkdir(exist_ok=True)
        try:
            status, _, _, exported = run_buildspec(
                load_spec(), env, work / "src", shipper.emit,
                on_phase=lambda p, s, m: self._phase(b, p, s, m),
                on_start=lambda proc: self._started(b, proc))
        except Exception as e:  # noqa: BLE001 - a harness fault is the build's FAULT
            shipper.emit(f"[Container] agentbuild-local: {e!r}")
            status, exported = "FAULT", {}
        if b["stopped"]:
            status, exported = "STOPPED", {}
        shipper.flush()
        with self._lock:
            t = now_iso()
            for phase in ("UPLOAD_ARTIFACTS", "FINALIZING"):
                b["phases"].append({"phaseType": phase, "phaseStatus": "SUCCEEDED", "startTime": t,
                                    "endTime": t, "durationInSeconds": 0})
            self._render(b, (status, exported if status == "SUCCEEDED" else {}))
        self._announce(b, True)
        remove_tree(work)
        log(f"codebuild (real): {build['id']} ended {status} {json.dumps(exported)}")

    def _started(self, b: dict[str, Any], proc: subprocess.Popen) -> None:
        """The build's shell exists: a StopBuild that came first stops it now."""
        with self._lock:
            b["proc"] = proc
            stopped = b["stopped"]
        if stopped:
            os.killpg(proc.pid, signal.SIGTERM)

    def report(self, build: dict[str, Any]) -> None:
        """BatchGetBuilds: the dict is kept current by the build's thread; nothing to do."""

    def stop(self, build: dict[str, Any]) -> None:
        """StopBuild: the shell and everything it started get SIGTERM; the build ends STOPPED."""
        with self._lock:
            b = self._builds.get(build["id"])
            if b is None or build.get("buildComplete"):
                return
            b["stopped"] = True
            proc = b.get("proc")
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
