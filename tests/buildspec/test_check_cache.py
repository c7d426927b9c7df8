"""scripts/check-cache.sh (`checked`, used by scripts/check-template.sh): a static check that
passed on exactly these inputs is not run again; anything else runs it. Broken on purpose:
a changed input, a changed tool version, a failing check, another command."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def checked(tmp_path: Path, title: str, inputs: list[str], command: str, **env: str) -> tuple[int, str, int]:
    """Runs `checked` once; (exit status, output, how many times the command has run so far)."""
    script = f'source {ROOT / "scripts" / "check-cache.sh"}; checked "$@"'
    out = subprocess.run(["bash", "-c", script, "checked", title, *inputs, "--", "bash", "-c", command],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "CHECK_CACHE": str(tmp_path / "cache"), **env})
    runs = tmp_path / "runs"
    return out.returncode, out.stdout + out.stderr, len(runs.read_text()) if runs.exists() else 0


def test_a_pass_on_the_same_inputs_is_not_run_again(tmp_path):
    (tmp_path / "template.yaml").write_text("a: 1\n")
    ok = "printf x >> runs"
    assert checked(tmp_path, "lint 1.0", ["template.yaml"], ok)[::2] == (0, 1)
    status, output, runs = checked(tmp_path, "lint 1.0", ["template.yaml"], ok)
    assert (status, runs) == (0, 1) and "passed before on these inputs" in output
    # Without the cache, it runs.
    assert checked(tmp_path, "lint 1.0", ["template.yaml"], ok, AGENTBUILD_NO_CHECK_CACHE="1")[::2] == (0, 2)


def test_a_changed_input_version_or_command_runs_again(tmp_path):
    (tmp_path / "template.yaml").write_text("a: 1\n")
    (tmp_path / "config.yaml").write_text("skip: []\n")
    ok = "printf x >> runs"
    assert checked(tmp_path, "lint 1.0", ["template.yaml", "config.yaml"], ok)[::2] == (0, 1)
    (tmp_path / "config.yaml").write_text("skip: [everything]\n")
    assert checked(tmp_path, "lint 1.0", ["template.yaml", "config.yaml"], ok)[::2] == (0, 2)
    assert checked(tmp_path, "lint 1.1", ["template.yaml", "config.yaml"], ok)[::2] == (0, 3)
    assert checked(tmp_path, "lint 1.1", ["template.yaml", "config.yaml"], ok + " ")[::2] == (0, 4)
    assert checked(tmp_path, "lint 1.1", ["template.yaml", "config.yaml"], ok)[::2] == (0, 4)


def test_a_failing_check_fails_and_is_never_remembered(tmp_path):
    (tmp_path / "template.yaml").write_text("broken\n")
    failing = "printf x >> runs; exit 3"
    assert checked(tmp_path, "lint 1.0", ["template.yaml"], failing)[::2] == (3, 1)
    assert checked(tmp_path, "lint 1.0", ["template.yaml"], failing)[::2] == (3, 2)
    assert not (tmp_path / "cache").exists()


def test_a_missing_input_fails(tmp_path):
    status, output, runs = checked(tmp_path, "lint 1.0", ["nowhere.yaml"], "printf x >> runs")
    assert status != 0 and runs == 0, output


def test_the_scratch_directory_does_not_change_the_key(tmp_path):
    ok = "printf x >> runs; true"
    for scratch in ("tmp.AAAA", "tmp.BBBB", "tmp.CCCC"):
        (tmp_path / scratch).mkdir()
        (tmp_path / scratch / "t.json").write_text("{}\n")
        checked(tmp_path, "scan", [f"{scratch}/t.json"], f"{ok} {scratch}/t.json", CHECK_SCRATCH=scratch)
    assert (tmp_path / "runs").read_text() == "x"
    (tmp_path / "tmp.CCCC" / "t.json").write_text("{\"changed\": 1}\n")
    assert checked(tmp_path, "scan", ["tmp.CCCC/t.json"], ok + " tmp.CCCC/t.json", CHECK_SCRATCH="tmp.CCCC")[2] == 2


def test_an_optional_config_appearing_or_changing_runs_again(tmp_path):
    (tmp_path / "template.yaml").write_text("a: 1\n")
    inputs = ["template.yaml", "?.lintrc"]
    ok = "printf x >> runs"
    assert checked(tmp_path, "lint 1.0", inputs, ok)[::2] == (0, 1)
    assert checked(tmp_path, "lint 1.0", inputs, ok)[::2] == (0, 1)
    (tmp_path / ".lintrc").write_text("ignore: everything\n")
    assert checked(tmp_path, "lint 1.0", inputs, ok)[::2] == (0, 2)
    (tmp_path / ".lintrc").write_text("ignore: more\n")
    assert checked(tmp_path, "lint 1.0", inputs, ok)[::2] == (0, 3)


def test_a_committed_cache_is_ignored(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "template.yaml").write_text("a: 1\n")
    ok = "printf x >> runs"
    assert checked(tmp_path, "lint 1.0", ["template.yaml"], ok)[::2] == (0, 1)
    # Someone commits a "pass" (here: the one just made): it no longer counts.
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "cache"], check=True)
    status, output, runs = checked(tmp_path, "lint 1.0", ["template.yaml"], ok)
    assert (status, runs) == (0, 2) and "passed before" not in output
