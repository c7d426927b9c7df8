"""The injection endpoint (AGENTBUILD_INJECT_URL; API in local/README.md): queued Lambda outcomes
for the bridge and the CodeBuild scripts, over plain HTTP on 127.0.0.1."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .agentcore import AgentCoreScripts
from .codebuild import CodeBuildScripts
from .lambda_bridge import Injector


def make_inject_server(injector: Injector, port: int,
                       codebuild: CodeBuildScripts | None = None,
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
                released = codebuild.clear() if codebuild is not None else []
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
