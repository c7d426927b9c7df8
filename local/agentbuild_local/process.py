"""Processes and ports: pid files checked against the command they ran, a process tree ended by
PID, free ports. Standard library only: `down` runs with the system python3."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .config import STATE_DIR, StackError, log


def ensure_free(port: int, what: str) -> None:
    if not port:
        return
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise StackError(f"{what}: 127.0.0.1:{port} is not free ({e.strerror})") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"process {proc.pid} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def pid_file(name: str) -> Path:
    return STATE_DIR / f"{name}.pid"


# What each pid file's process runs; a pid whose command line lacks it was reused by another
# process, and is never signalled.
PID_MARKERS = {"stack": "stack.py", "watch": "cargo-lambda"}


def read_pid(name: str) -> int | None:
    try:
        pid = int(pid_file(name).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if PID_MARKERS[name] in cmdline else None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A zombie still answers kill(0); look at its state.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) for every process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(pid: int) -> set[int]:
    table = proc_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def stop_group(pid: int | None, what: str, grace: float = 10) -> None:
    """End the process group led by `pid` (started with start_new_session) and every descendant.

    cargo lambda watch starts each handler in a session of its own, so the group alone would
    miss them if watch died first; they are found through the process tree, by PID.
    """
    if not pid:
        return
    targets = descendants(pid) | {pid}

    def live() -> set[int]:
        table = proc_table()
        return {p for p, (_, pgid, state) in table.items()
                if state != "Z" and (p in targets or pgid == pid)}

    def signal_all(sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        for p in targets:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live() and time.monotonic() < deadline:
        time.sleep(0.1)
    if live():
        log(f"{what} (group {pid}) ignored SIGTERM; killing {sorted(live())}")
        signal_all(signal.SIGKILL)
