"""A small AI agent served the way Amazon Bedrock AgentCore Runtime calls a container.

AgentCore sends `POST /invocations` with a JSON body and polls `GET /ping`, on port 8080.
Only the standard library: the image needs nothing but Python.

The "model" here is a tiny rule-based planner with two tools (a clock and a calculator), so
the agent answers deterministically without credentials; swap `plan()` for a Bedrock call
(boto3 `bedrock-runtime` Converse) to make it a real LLM agent.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import signal
import sys
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AGENT_NAME = os.environ.get("AGENT_NAME", "sample-agent")
PORT = int(os.environ.get("PORT", "8080"))
MAX_BODY = 1 << 20  # 1 MiB is plenty for a prompt

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float:
    """Arithmetic only: the expression is parsed, never eval'd."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            if isinstance(node.op, ast.Pow) and abs(walk(node.right)) > 64:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError("only numbers and + - * / % ** are allowed")

    return walk(ast.parse(expression, mode="eval"))


def clock(_: str) -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


TOOLS = {"calculator": calculate, "clock": clock}


def plan(prompt: str) -> tuple[str | None, str]:
    """Which tool (if any) answers the prompt, and its input."""
    text = prompt.strip()
    lowered = text.lower()
    if lowered.startswith(("calc ", "calculate ", "compute ")):
        return "calculator", text.split(" ", 1)[1]
    if "time" in lowered or "clock" in lowered:
        return "clock", ""
    return None, text


def invoke(payload: dict) -> dict:
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError('send {"prompt": "<text>"}')
    tool, tool_input = plan(prompt)
    if tool is None:
        answer = f"{AGENT_NAME} heard: {prompt.strip()}"
    else:
        answer = str(TOOLS[tool](tool_input))
    return {"agent": AGENT_NAME, "response": answer, "tool": tool}


class Handler(BaseHTTPRequestHandler):
    server_version = "sample-agent/1.0"

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/ping":
            self._send(200, {"status": "Healthy", "time_of_last_update": int(time.time())})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/invocations":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            self._send(200, invoke(payload))
        except (ValueError, ZeroDivisionError, SyntaxError) as e:
            self._send(400, {"error": str(e)})

    def log_message(self, fmt: str, *args: object) -> None:
        # One JSON line per request on stdout: CloudWatch-friendly.
        print(json.dumps({"agent": AGENT_NAME, "request": fmt % args}), flush=True)


def main() -> int:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown() or sys.exit(0))
    print(json.dumps({"agent": AGENT_NAME, "listening": PORT}), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
