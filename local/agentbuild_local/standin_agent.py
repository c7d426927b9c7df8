"""The local stand-in for a deployed *container* (no Docker here, so no image runs): it answers
AgentCore's HTTP contract on 127.0.0.1:<port> — GET /ping `{"status": "Healthy"}`, POST
/invocations echoing the payload with the runtime version's environment — and fails on purpose
when the version's environment says `AGENTBUILD_LOCAL_AGENT_FAULT` = crash | 500 | hang.
Standard library only: it runs with the stack's own python."""
from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT = os.environ.get("AGENTBUILD_LOCAL_AGENT_FAULT", "")


class Agent(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the agent's log is the stack's agents/<id>.log
        sys.stderr.write("stand-in: " + (args[0] % args[1:]) + "\n")

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/ping":
            return self._send(200, {"status": "Healthy", "time_of_last_update": int(time.time())})
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/invocations":
            return self._send(404, {"error": "not found"})
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if FAULT == "500":
            return self._send(500, {"error": "stand-in told to fail (AGENTBUILD_LOCAL_AGENT_FAULT=500)"})
        if FAULT == "hang":
            time.sleep(3600)
        try:
            prompt = json.loads(payload or b"{}")
        except ValueError:
            prompt = payload.decode("utf-8", "replace")
        self._send(200, {"result": "stand-in agent", "echo": prompt,
                         "version": os.environ.get("AGENTBUILD_LOCAL_AGENT_VERSION", "")})


if __name__ == "__main__":
    if FAULT == "crash":
        sys.exit("stand-in told to crash on start (AGENTBUILD_LOCAL_AGENT_FAULT=crash)")
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Agent).serve_forever()
