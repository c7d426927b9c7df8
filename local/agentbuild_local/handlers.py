"""The handlers: built once by `up` (debug), run one process each against `cargo lambda watch`'s
Runtime API, restarted if one exits."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from .config import ROOT, STATE_DIR, StackError, log, tool_env
from .workspace import cargo_metadata


def start_watch(manifest: Path, port: int, env_file: Path, reload: bool, log_path: Path) -> subprocess.Popen:
    """The Lambda runtime emulator. By default it only serves the Runtime API (`--only-lambda-apis`)
    and the stack runs the binaries built by `up` (see Handlers): `cargo lambda watch` would
    otherwise `cargo run` each function on its first invoke, recompiling whatever changed since
    `up` — past the Task's 60 s timeout on this machine while others edit the workspace.
    `--reload` gives the plain watch mode (cargo run + recompile on change) for handler work."""
    cmd = ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
           "--manifest-path", str(manifest), "--color", "never"]
    cmd += ["--env-file", str(env_file)] if reload else ["--only-lambda-apis"]
    log(f"starting {' '.join(cmd)}")
    out = open(log_path, "ab")
    # Its own process group, so `down` can end it (and in --reload mode the handlers it spawned).
    return subprocess.Popen(cmd, cwd=manifest.parent, env=tool_env(), stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


class Handlers:
    """One process per function, from the pre-built binary (`agentbuild-handlers <function>`),
    polling the emulator's Runtime API at /.rt/<function>; restarted if it exits (a Lambda
    environment is replaced the same way)."""

    def __init__(self, commands: dict[str, list[str]], runtime_port: int, env: dict[str, str]):
        self.commands = commands
        self.runtime_port = runtime_port
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self, name: str) -> None:
        env = {**os.environ, **self.env,
               "AWS_LAMBDA_FUNCTION_NAME": name,
               "AWS_LAMBDA_FUNCTION_VERSION": "1",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
               "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.runtime_port}/.rt/{name}"}
        out = open(STATE_DIR / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(self.commands[name], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started[name] = time.monotonic()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)
        log(f"handlers running: {', '.join(f'{n} (pid {p.pid})' for n, p in self.procs.items())}")

    def supervise(self) -> None:
        with self._lock:
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None and time.monotonic() - self.started[name] > 2:
                    log(f"handler {name} exited with {proc.returncode}; restarting (see .local/{name}.log)")
                    self.start(name)

    def reconfigure(self, settings: dict[str, str]) -> list[str]:
        """New settings for every handler (what a redeploy with new parameter values does):
        every handler is restarted with them; returns their names. Only between executions:
        an invocation in flight would be cut off."""
        with self._lock:
            changed = {k for k, v in settings.items() if self.env.get(k) != v}
            self.env.update(settings)
            restarted = []
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                self.start(name)
                restarted.append(name)
            log(f"handlers reconfigured ({', '.join(sorted(changed)) or 'no change'}): restarted {len(restarted)}")
            return restarted

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


# Every Lambda in one binary (crates/core/src/bin/agentbuild-handlers.rs): `agentbuild-handlers
# <function>` runs what functions/<function>'s binary runs (both call the handler module's
# `main`; tests/tests/contracts/template.rs holds them to that). One link on a cold build instead
# of twelve; AWS runs the per-function binaries (`make package`), as `--reload` does here.
HANDLERS_BIN = "agentbuild-handlers"


def handler_commands(manifest: Path, functions: list[str], binaries: set[str]) -> dict[str, list[str]]:
    """The command that runs each wanted function (those the workspace has)."""
    binary = Path(cargo_metadata(manifest)["target_directory"]) / "debug" / HANDLERS_BIN
    if not binary.exists():
        raise StackError(f"not built: {binary} (run `up` without --no-build)")
    return {f: [str(binary), f] for f in functions if f in binaries}


# The smallest test target of the workspace (crates/codezip/tests/hostile.rs): selecting one test
# target with --workspace resolves features as `cargo test --workspace` does (dev-dependencies
# turn on `test-util` in tokio and the SDKs), so the handlers share every compiled dependency with
# `make test` and `make demo`.
FEATURE_PARITY_TEST = "hostile"


def build_command(manifest: Path, wanted: list[str], reload: bool) -> list[list[str]]:
    """The cargo calls that build the handlers.

    --reload: one bin per call, as `cargo lambda watch --reload` would `cargo run --bin <f>` (the
    same feature resolution, so its runs find everything fresh). Otherwise one call that builds
    HANDLERS_BIN (all of them) plus FEATURE_PARITY_TEST, in the features of `cargo test --workspace`."""
    base = ["cargo", "build", "--manifest-path", str(manifest)]
    if reload:
        return [base + ["--bin", f] for f in wanted]
    return [base + ["--workspace", "--bin", HANDLERS_BIN, "--test", FEATURE_PARITY_TEST]]


def prebuild(manifest: Path, binaries: set[str], functions: list[str], reload: bool = False) -> None:
    """Compile the handlers; the stack runs these very binaries until `down`. The caller's
    environment passes through: `make test`, `make demo` and `make local-up` source
    scripts/cargo-env.sh (clippy-driver as the workspace's rustc wrapper) so they share a build."""
    wanted = [f for f in functions if f in binaries]
    t0 = time.monotonic()
    log(f"building {', '.join(wanted)} (debug, the test build's features)")
    for cmd in build_command(manifest, wanted, reload):
        if subprocess.run(cmd, cwd=manifest.parent, env=tool_env()).returncode != 0:
            raise StackError(f"{' '.join(cmd)}: does not compile; fix it or pass --no-build")
    log(f"built in {time.monotonic() - t0:.1f} s")
