"""The Cargo workspace: which crates are the Lambdas, and what cargo says about its binaries.

The Lambdas are not listed anywhere by hand: every crate under functions/ is one (the core
library and the CLI live in crates/), named after its directory — so are its package and its
binary, which the runtime emulator routes by (and `target/lambda/<name>/bootstrap.zip`).
scripts/package.sh applies the same rule; local/test_stack.py checks both, and the names.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .config import ROOT


def lambda_functions(root: Path = ROOT) -> tuple[str, ...]:
    """The Lambda crates: the directories `root/functions/<name>/` with a Cargo.toml, sorted."""
    return tuple(sorted(m.parent.name for m in (root / "functions").glob("*/Cargo.toml")))


LAMBDA_FUNCTIONS = lambda_functions()


def cargo_metadata(manifest: Path) -> dict[str, Any]:
    meta = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--manifest-path", str(manifest)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(meta.stdout)


def workspace_binaries(manifest: Path) -> set[str]:
    return {
        t["name"]
        for p in cargo_metadata(manifest)["packages"]
        for t in p["targets"]
        if "bin" in t["kind"]
    }
