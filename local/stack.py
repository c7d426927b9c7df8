#!/usr/bin/env python3
"""agentbuild's local stack — the entry point; the code is the package local/agentbuild_local/.

    local/stack.py up | down | status | env | serve     (local/README.md; --help)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agentbuild_local.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
