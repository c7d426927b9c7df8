"""scripts/test-tmpdir.sh, make test's scratch space: a fresh folder in a roomy /dev/shm as TMPDIR,
a killed run's folder removed by the next, a running run's left alone, nothing when opted out.

Run: .venv/bin/python -m pytest local/test_test_tmpdir.py -q
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sourced(shm: Path, **env: str) -> tuple[str, str]:
    """(TEST_TMP, TMPDIR) after a `set -euo pipefail` bash sources the script, as test.sh does."""
    out = subprocess.run(
        ["bash", "-c", "set -euo pipefail; source scripts/test-tmpdir.sh; printf '%s\\n%s\\n' \"$TEST_TMP\" \"${TMPDIR:-}\""],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "TMPDIR"}, "AGENTBUILD_SHM": str(shm), **env})
    assert out.returncode == 0, out.stderr
    test_tmp, tmpdir = out.stdout.split("\n")[:2]
    return test_tmp, tmpdir


def test_a_fresh_folder_is_the_runs_tmpdir_and_only_a_killed_runs_folder_is_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    killed = tmp_path / f"agentbuild-test.{dead.pid}.abc123"
    (killed / "pytest-of-root").mkdir(parents=True)
    running = tmp_path / f"agentbuild-test.{os.getpid()}.def456"
    running.mkdir()
    other = tmp_path / "agentbuild-test.notapid"
    other.mkdir()
    test_tmp, tmpdir = sourced(tmp_path)
    assert not killed.exists() and running.exists() and other.exists()
    # tmp_path's filesystem has 4 GB free on these machines (else the script leaves TMPDIR alone).
    assert test_tmp == tmpdir and Path(test_tmp).parent == tmp_path
    assert Path(test_tmp).name.startswith("agentbuild-test.") and Path(test_tmp).is_dir()


def test_keep_leaves_the_callers_tmpdir(tmp_path):
    assert sourced(tmp_path, AGENTBUILD_TEST_TMPDIR="keep") == ("", "")
    assert sourced(tmp_path / "missing") == ("", "")
