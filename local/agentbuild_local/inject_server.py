"""The injection endpoint (AGENTBUILD_INJECT_URL; API in local/README.md): queued Lambda outcomes
for the bridge and the CodeBuild scripts, over plain HTTP on 127.0.0.1."""
from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from . import ecr_scans, ecr_signing
from .agentcore import AgentCoreScripts
from .codebuild import CodeBuildScripts
from .lambda_bridge import Injector

# Handler settings a test may change at run time (as a redeploy with another parameter value).
RECONFIGURABLE = {"callbackTimeoutSeconds": "AGENTBUILD_CALLBACK_TIMEOUT_SECONDS",
                  "stackName": "AGENTBUILD_STACK_NAME"}
# A CloudFormation stack name, as the handlers check it (crates/core/src/config.rs).
STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")


def setting(key: str, value: Any) -> str:
    """A POST /config value in the form its handler setting takes; ValueError otherwise."""
    if key == "stackName":
        if not (isinstance(value, str) and STACK_NAME.fullmatch(value)):
            raise ValueError("stackName must be a CloudFormation stack name ([A-Za-z][-A-Za-z0-9]{0,127})")
        return value
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
        raise ValueError(f"{key} must be an integer from 1 to 3600")
    return str(value)


def make_inject_server(injector: Injector, port: int,
                       codebuild: CodeBuildScripts | None = None,
                       reconfigure: Callable[[dict[str, str]], list[str]] | None = None,
                       settings: dict[str, str] | None = None,
                       agentcore: AgentCoreScripts | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # the bridge logs what matters
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _parts(self) -> list[str]:
            return [p for p in self.path.split("?")[0].split("/") if p]

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def do_GET(self) -> None:
            parts = self._parts()
            if parts == ["health"]:
                return self._send(200, {"ok": True})
            if parts == ["functions"]:
                return self._send(200, injector.pending())
            if parts == ["invocations"]:
                return self._send(200, injector.invocations())
            if len(parts) == 3 and parts[0] == "functions" and parts[2] == "invocations":
                return self._send(200, injector.invocations(parts[1]))
            if parts == ["codebuild"] and codebuild is not None:
                return self._send(200, codebuild.snapshot())
            if parts == ["codebuild", "events"] and codebuild is not None and codebuild.events is not None:
                return self._send(200, codebuild.events.status())
            if parts == ["config"]:
                return self._send(200, {k: (settings or {}).get(v) for k, v in RECONFIGURABLE.items()})
            if parts == ["agentcore"] and agentcore is not None:
                return self._send(200, agentcore.snapshot())
            self._send(404, {"error": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            parts = self._parts()
            try:
                if len(parts) == 3 and parts[0] == "functions" and parts[2] == "queue":
                    body = self._body()
                    depth = injector.push(parts[1], body if isinstance(body, list) else [body])
                    return self._send(200, {"function": parts[1], "queued": depth})
                if codebuild is not None and parts in (["codebuild", "scripts"], ["codebuild", "hold"]):
                    body = self._body()
                    count = 0
                    for entry in (body if isinstance(body, list) else [body]):
                        if parts[1] == "hold" and isinstance(entry, dict):
                            entry = {**entry, "hold": True}
                        count = codebuild.add(entry)
                    return self._send(200, {"scripts": count})
                if codebuild is not None and codebuild.events is not None and parts == ["codebuild", "events"]:
                    body = self._body() or {}
                    if not (isinstance(body, dict) and isinstance(body.get("drop"), bool)
                            and isinstance(body.get("match", ""), str) and set(body) <= {"drop", "match"}):
                        raise ValueError('events takes {"drop": true|false, "match": "<text>"} '
                                         '(no match: every build\'s events)')
                    return self._send(200, codebuild.events.set_drop(body["drop"], body.get("match", "")))
                if parts == ["config"] and reconfigure is not None:
                    body = self._body() or {}
                    if not (isinstance(body, dict) and body and set(body) <= set(RECONFIGURABLE)):
                        raise ValueError(f"config takes {{{', '.join(RECONFIGURABLE)}}}")
                    values = {RECONFIGURABLE[k]: setting(k, v) for k, v in body.items()}
                    return self._send(200, {"restarted": reconfigure(values)})
                if parts == ["ecr", "scan-findings"]:
                    body = self._body()
                    count = 0
                    for entry in (body if isinstance(body, list) else [body]):
                        count = ecr_scans.add(entry)
                    return self._send(200, {"queued": count})
                if parts == ["ecr", "signing"]:
                    body = self._body()
                    count = 0
                    for entry in (body if isinstance(body, list) else [body]):
                        count = ecr_signing.add(entry)
                    return self._send(200, {"queued": count})
                if agentcore is not None and parts == ["agentcore", "scripts"]:
                    body = self._body()
                    count = 0
                    for entry in (body if isinstance(body, list) else [body]):
                        count = agentcore.add(entry)
                    return self._send(200, {"scripts": count})
                if codebuild is not None and parts == ["codebuild", "release"]:
                    body = self._body() or {}
                    match = body.get("match", "") if isinstance(body, dict) else None
                    if not isinstance(match, str):
                        raise ValueError('release takes {"match": "<text>"} ("" or nothing: every held build)')
                    return self._send(200, {"released": codebuild.release(match)})
            except (ValueError, json.JSONDecodeError) as e:
                return self._send(400, {"error": str(e)})
            self._send(404, {"error": f"no route POST {self.path}"})

        def do_DELETE(self) -> None:
            parts = self._parts()
            released: list[str] = []
            if parts == []:
                injector.clear()
                ecr_scans.clear()
                ecr_signing.clear()
                released = codebuild.clear() if codebuild is not None else []
                if codebuild is not None and codebuild.events is not None:
                    codebuild.events.set_drop(False)
                if agentcore is not None:
                    agentcore.clear()
            elif len(parts) == 3 and parts[0] == "functions" and parts[2] == "queue":
                injector.clear(parts[1])
            elif parts == ["codebuild", "scripts"] and codebuild is not None:
                released = codebuild.clear()
            elif parts == ["agentcore", "scripts"] and agentcore is not None:
                agentcore.clear()
            else:
                return self._send(404, {"error": f"no route DELETE {self.path}"})
            self._send(200, {"ok": True, "released": released})

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
