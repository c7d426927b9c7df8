"""scripts/cargo-env.sh, the one build environment of `make test`, `make demo` and `make local-up`:
clippy-driver as the workspace's rustc wrapper with `-D warnings`, so the test build is also the
clippy run. These tests break it on purpose: a lint and a plain warning must fail a compile made
the way cargo makes it under that environment; without the environment they pass.

Run: .venv/bin/python -m pytest local/test_cargo_env.py -q
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cargo_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The variables scripts/cargo-env.sh exports, read from a bash that sources it."""
    out = subprocess.run(
        ["bash", "-c", "source scripts/cargo-env.sh && printf '%s\\n%s\\n' \"$RUSTC_WORKSPACE_WRAPPER\" \"$CLIPPY_ARGS\""],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, **(extra or {})})
    wrapper, args = out.stdout.splitlines()
    return {"RUSTC_WORKSPACE_WRAPPER": wrapper, "CLIPPY_ARGS": args}


def compile_as_cargo_does(env: dict[str, str], source: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """One crate compiled the way cargo calls a workspace wrapper: `<wrapper> rustc <args>`, with
    the crate marked primary (cargo sets CARGO_PRIMARY_PACKAGE for workspace members)."""
    src = tmp / "lib.rs"
    src.write_text(source)
    cmd = [env["RUSTC_WORKSPACE_WRAPPER"], "rustc", "--edition", "2021", "--crate-type", "lib",
           "--emit", "metadata", "--out-dir", str(tmp), str(src)] if env["RUSTC_WORKSPACE_WRAPPER"] else \
        ["rustc", "--edition", "2021", "--crate-type", "lib", "--emit", "metadata", "--out-dir", str(tmp), str(src)]
    run_env = {**os.environ, "CARGO_PRIMARY_PACKAGE": "1", "CLIPPY_ARGS": env["CLIPPY_ARGS"]}
    return subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=120)


def test_the_environment_names_an_existing_clippy_driver_and_denies_warnings():
    env = cargo_env()
    assert Path(env["RUSTC_WORKSPACE_WRAPPER"]).name == "clippy-driver"
    assert Path(env["RUSTC_WORKSPACE_WRAPPER"]).is_file()
    assert env["CLIPPY_ARGS"].split("__CLIPPY_HACKERY__") == ["-D", "warnings", ""]


def test_a_clippy_lint_and_a_plain_warning_fail_the_compile(tmp_path):
    env = cargo_env()
    lint = compile_as_cargo_does(env, "pub fn f(v: &Vec<u8>) -> usize { v.len() }\n", tmp_path)
    assert lint.returncode != 0 and "clippy::ptr_arg" in lint.stderr, lint.stderr
    warning = compile_as_cargo_does(env, "pub fn f() { let unused = 1; }\n", tmp_path)
    assert warning.returncode != 0 and "unused" in warning.stderr, warning.stderr
    clean = compile_as_cargo_does(env, "pub fn f(v: &[u8]) -> usize { v.len() }\n", tmp_path)
    assert clean.returncode == 0, clean.stderr


def test_without_clippy_the_same_lint_compiles(tmp_path):
    env = {"RUSTC_WORKSPACE_WRAPPER": "", "CLIPPY_ARGS": ""}
    plain = compile_as_cargo_does(env, "pub fn f(v: &Vec<u8>) -> usize { v.len() }\n", tmp_path)
    assert plain.returncode == 0, plain.stderr
