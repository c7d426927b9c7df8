"""AgentCore Runtime's data plane, locally: InvokeAgentRuntime really runs the deployed agent.

moto 5.2.5 routes InvokeAgentRuntime (signing name `bedrock-agentcore`, POST
/runtimes/{arn}/invocations?qualifier=...) to its data-plane responses class, which has no such
method; this module adds it (checked absent first) and serves it from a local agent process:

  * the version: `qualifier` is a version number, or an endpoint name resolved to the version
    that endpoint serves (its liveVersion); none is DEFAULT (the runtime's newest version);
  * what runs (each version keeps the artifact and environment it was created or updated with):
    - a code artifact (`codeConfiguration`: an S3 zip from moto's S3): the zip is unpacked once per
      version; its dependencies are the artifact's own `requirements.txt` installed **for this
      host** (x86_64; the artifact's wheels are aarch64 and cannot load here) with uv into a venv
      cached by the requirements' SHA-256 under `.local/agent-venvs/`; then the artifact's own
      entry point runs with that venv (`AGENTBUILD_LOCAL_AGENT_RUNNER` finds its
      BedrockAgentCoreApp and runs it on the port; a plain script gets `PORT`);
    - a container (`containerConfiguration`): no image runs here (no Docker): a documented
      **stand-in** (`standin_agent.py`) answers the HTTP contract; so does a code artifact
      without `AGENTBUILD_LOCAL_RUN_CODE=1` (a real agent's first install takes minutes, longer
      than a smoke test's bound, and its model calls need Bedrock, which is not here);
  * either way, on a free loopback port: `/ping` must answer `Healthy` within the start bound,
    then `POST /invocations` is forwarded and its answer relayed;
  * ways to fail (the version's own environment variables, i.e. `deploy.environmentVariables`):
    `AGENTBUILD_LOCAL_AGENT_FAULT` = `crash` (exits on start), `500` (answers 500), `hang` (never
    answers). The stand-in honours them; for a code artifact the runner does, before the code.

The agent's failures answer as AgentCore's do: HTTP 424 `RuntimeClientError` with the reason.
Processes stay up for later invocations of the same version and end with the stack.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from .config import STATE_DIR, log

# A started agent answers /ping within this (seconds), or it failed to start.
START_SECONDS = 20.0
# The data plane's own bound on one invocation (the caller's own is usually shorter).
INVOKE_SECONDS = 60.0
HERE = Path(__file__).resolve().parent
FAULT = "AGENTBUILD_LOCAL_AGENT_FAULT"
# Set to 1 (the stack's environment) to run a code artifact's own entry point; else the stand-in.
RUN_CODE = "AGENTBUILD_LOCAL_RUN_CODE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentFailed(Exception):
    """The agent's fault (crash, non-2xx, no answer): a RuntimeClientError."""


class LocalAgents:
    """One process per (runtime id, version), started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[tuple[str, str], tuple[subprocess.Popen, int, Path]] = {}
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}  # (runtime id, version) -> config
        atexit.register(self.stop_all)

    def remember(self, runtime_id: str, version: str, artifact: Any, env: Any, protocol: Any) -> None:
        with self._lock:
            self.versions[(runtime_id, version)] = json.loads(json.dumps(
                {"artifact": artifact or {}, "env": env or {}, "protocol": protocol or {}}, default=str))

    def stop_all(self) -> None:
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {f"{rid}:{v}": {"port": port, "running": p.poll() is None, "log": str(logf)}
                    for (rid, v), (p, port, logf) in self._procs.items()}

    # ------------------------------------------------------------------ starting an agent
    def _command(self, runtime_id: str, version: str, config: dict[str, Any], port: int) -> tuple[list[str], dict[str, str]]:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
               **{str(k): str(v) for k, v in config["env"].items()}, "PORT": str(port)}
        code = config["artifact"].get("codeConfiguration")
        # Opt-in: installing a real agent's requirements takes minutes on first use (longer than
        # a smoke test's bound) and its model calls need Bedrock, which is not here.
        if code and os.environ.get(RUN_CODE) == "1":
            root, venv_python = self._code_artifact(runtime_id, version, code)
            entry = (code.get("entryPoint") or ["main.py"])[0]
            return [str(venv_python), str(HERE / "agent_runner.py"), str(root / entry), str(port)], env
        return [sys.executable, str(HERE / "standin_agent.py"), str(port)], env

    def _code_artifact(self, runtime_id: str, version: str, code: dict[str, Any]) -> tuple[Path, Path]:
        from moto.s3.models import s3_backends
        from .config import ACCOUNT

        s3 = (code.get("code") or {}).get("s3") or {}
        bucket, key = s3.get("bucket"), s3.get("prefix")
        obj = s3_backends[ACCOUNT]["aws"].get_object(bucket, key)
        data = obj.value
        root = STATE_DIR / "agent-code" / hashlib.sha256(data).hexdigest()[:16]
        if not root.exists():
            tmp = root.with_suffix(".tmp")
            zipfile.ZipFile(io.BytesIO(data)).extractall(tmp)
            tmp.rename(root)
        return root, self._venv(root)

    def _venv(self, root: Path) -> Path:
        """The artifact's requirements.txt, installed for this host with uv, cached by content."""
        req = root / "requirements.txt"
        text = req.read_bytes() if req.exists() else b""
        venv = STATE_DIR / "agent-venvs" / hashlib.sha256(text).hexdigest()[:16]
        python = venv / "bin" / "python"
        if python.exists():
            return python
        uv = os.environ.get("AGENTBUILD_LOCAL_UV") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        if text.strip():
            subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(req)],
                           check=True, timeout=600)
        return python

    def _start(self, runtime_id: str, version: str) -> int:
        key = (runtime_id, version)
        with self._lock:
            running = self._procs.get(key)
            if running and running[0].poll() is None:
                return running[1]
            config = self.versions.get(key)
        if config is None:
            raise AgentFailed(f"version {version} of runtime {runtime_id} is unknown to the local data plane")
        port = _free_port()
        cmd, env = self._command(runtime_id, version, config, port)
        logf = STATE_DIR / "agents" / f"{runtime_id}-v{version}.log"
        logf.parent.mkdir(parents=True, exist_ok=True)
        out = open(logf, "ab")
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with self._lock:
            self._procs[key] = (proc, port, logf)
        log(f"dataplane: {runtime_id} v{version} started on 127.0.0.1:{port} (pid {proc.pid}, log {logf})")
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = logf.read_text(errors="replace")[-300:].strip().replace("\n", " | ")
                raise AgentFailed(f"the agent exited with code {proc.returncode} before /ping answered: {tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                    if r.status == 200:
                        return port
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        proc.kill()
        raise AgentFailed(f"/ping did not answer Healthy within {START_SECONDS:.0f} s of the start")

    def invoke(self, runtime_id: str, version: str, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        port = self._start(runtime_id, version)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, method="POST",
                                     headers={"Content-Type": content_type or "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=INVOKE_SECONDS) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            raise AgentFailed(f"POST /invocations answered {e.code}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise AgentFailed(f"POST /invocations did not answer: {e}") from None


_ORIGINALS: dict[str, Any] = {}


def install_dataplane(agents: LocalAgents) -> None:
    """Adds InvokeAgentRuntime to moto's data plane and remembers every runtime version's
    artifact and environment (moto's version snapshots keep neither)."""
    from moto.bedrockagentcore.responses import BedrockAgentCoreResponse
    from moto.bedrockagentcorecontrol.models import AgentRuntime, bedrockagentcorecontrol_backends
    from .config import ACCOUNT, checked_originals, StackError

    if hasattr(BedrockAgentCoreResponse, "invoke_agent_runtime"):
        raise StackError("moto's data plane now has invoke_agent_runtime: re-check dataplane.py")
    checked_originals(_ORIGINALS, {(AgentRuntime, "_snapshot_version"): "(self) -> None"},
                      "local/agentbuild_local/dataplane.py")
    snapshot = _ORIGINALS["_snapshot_version"]

    def patched_snapshot(self: Any) -> None:
        snapshot(self)
        agents.remember(self.agent_runtime_id, self.agent_runtime_version, self.agent_runtime_artifact,
                        self.environment_variables, self.protocol_configuration)

    def find(arn: str) -> Any:
        backend = bedrockagentcorecontrol_backends[ACCOUNT]["us-east-1"]
        uuid = arn.split("agent/")[-1].split(":")[0] if "agent/" in arn else None
        for rt in backend.agent_runtimes.values():
            if rt.agent_runtime_arn == arn or (uuid and f"agent/{uuid}:" in rt.agent_runtime_arn) \
                    or rt.agent_runtime_id == arn.split("runtime/")[-1]:
                return backend, rt
        return backend, None

    def invoke_agent_runtime(self: Any) -> Any:
        path = urllib.parse.urlparse(self.uri).path
        arn = urllib.parse.unquote(path.split("/runtimes/", 1)[-1].rsplit("/invocations", 1)[0])
        qualifier = (self.querystring.get("qualifier") or ["DEFAULT"])[0]
        backend, rt = find(arn)
        if rt is None:
            return json.dumps({"message": f"no runtime {arn}"}), {"status": 404, "x-amzn-errortype": "ResourceNotFoundException"}
        version = qualifier
        if not qualifier.isdigit():
            ep = None if qualifier == "DEFAULT" else backend.agent_runtime_endpoints.get((rt.agent_runtime_id, qualifier))
            if qualifier != "DEFAULT" and ep is None:
                return json.dumps({"message": f"no endpoint {qualifier}"}), {"status": 404, "x-amzn-errortype": "ResourceNotFoundException"}
            version = rt.agent_runtime_version if ep is None else ep.live_version
        body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
        try:
            status, out, ctype = agents.invoke(rt.agent_runtime_id, str(version), body, self.headers.get("Content-Type", ""))
        except AgentFailed as e:
            log(f"dataplane: {rt.agent_runtime_id} v{version}: {e}")
            return json.dumps({"message": str(e)}), {"status": 424, "x-amzn-errortype": "RuntimeClientError",
                                                     "Content-Type": "application/json"}
        session = self.headers.get("X-Amzn-Bedrock-AgentCore-Runtime-Session-Id", "")
        return out.decode("utf-8", "replace"), {"status": status, "Content-Type": ctype,
                                                "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session,
                                                "x-amzn-agentcore-version": str(version)}

    AgentRuntime._snapshot_version = patched_snapshot
    BedrockAgentCoreResponse.invoke_agent_runtime = invoke_agent_runtime
