"""Runs a code artifact's entry point on the local data plane's port, with the venv its
requirements were installed into for this host: `python agent_runner.py <entry.py> <port>`.
A BedrockAgentCoreApp found in the module is run on 127.0.0.1:<port> (its own `app.run()` would
take 8080); a script without one runs as `__main__` with `PORT` set. The fault switch
`AGENTBUILD_LOCAL_AGENT_FAULT` is honoured before the artifact's code (crash | 500 | hang; 500
and hang through the stand-in's handler when the module has no app)."""
from __future__ import annotations

import os
import runpy
import sys

entry, port = sys.argv[1], int(sys.argv[2])
fault = os.environ.get("AGENTBUILD_LOCAL_AGENT_FAULT", "")
if fault == "crash":
    sys.exit("told to crash on start (AGENTBUILD_LOCAL_AGENT_FAULT=crash)")
sys.path.insert(0, os.path.dirname(os.path.abspath(entry)))
module = runpy.run_path(entry, run_name="agentbuild_local_agent")
app = next((v for v in module.values() if type(v).__name__ == "BedrockAgentCoreApp"), None)
if app is None:
    runpy.run_path(entry, run_name="__main__")
    sys.exit(0)
if fault in ("500", "hang"):
    import time

    @app.entrypoint
    def faulty(payload):  # replaces the artifact's entrypoint: the switch says to fail
        if fault == "hang":
            time.sleep(3600)
        raise RuntimeError("told to fail (AGENTBUILD_LOCAL_AGENT_FAULT=500)")
app.run(port=port, host="127.0.0.1")
