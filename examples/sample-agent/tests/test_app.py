"""Run with `python -m unittest discover -s tests` from examples/sample-agent/.
Excluded from the image by .dockerignore."""

import json
import sys
import threading
import unittest
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import app  # noqa: E402


class AgentTest(unittest.TestCase):
    def test_tools_and_echo(self):
        self.assertEqual(app.invoke({"prompt": "calc 6 * 7"})["response"], "42")
        self.assertEqual(app.invoke({"prompt": "what time is it?"})["tool"], "clock")
        self.assertIn("hello", app.invoke({"prompt": "hello"})["response"])

    def test_calculator_refuses_code(self):
        with self.assertRaises(ValueError):
            app.calculate("__import__('os').system('id')")

    def test_http_contract(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), app.Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with urllib.request.urlopen(f"{base}/ping") as r:
                self.assertEqual(json.load(r)["status"], "Healthy")
            req = urllib.request.Request(f"{base}/invocations", data=b'{"prompt": "calc 2**10"}',
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                self.assertEqual(json.load(r)["response"], "1024")
        finally:
            server.shutdown()


if __name__ == "__main__":
    unittest.main()
