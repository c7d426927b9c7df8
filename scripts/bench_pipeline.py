"""`make bench-pipeline`: what a build costs the pipeline, measured on the local stack (the real
definition in moto's engine, the real handlers), next to the loop it replaced and Step
Functions' native `.sync` integration. Printed (and saved to $AGENTBUILD_LOCAL_DIR/bench-pipeline.json);
nothing asserted.

Measured, per build: state transitions (states entered: what Step Functions Standard bills),
Lambda invocations (the engine's tasks plus the CodeBuild event handler's), and completion lag
(from CodeBuild's end of the build to its final record), on two paths:
  * events: CodeBuild's events arrive (the callback timeout raised above the longest build);
  * fallback: every event of the build is lost (the callback timeout set to FALLBACK seconds).

Computed, not measured:
  * the poll loop this replaced (statemachine/build.asl.json and crates/core/src/domain/poll.rs
    before issue 11, commit 896b71d): StartBuild waited PollMinSeconds, then each CheckBuild
    waited a fifth of the time in the current phase, clamped to [PollMin, PollMax]; each poll
    was 3 transitions (Wait, CheckBuild, BuildFinished) and 1 invocation, plus 6 transitions and
    3 invocations around it. Its figures follow from that schedule for a build that spends its
    time in one phase (as the scripted builds here do), with AWS's defaults (10 s / 300 s) and
    with the local stack's (1 s / 2 s), which reproduce the issue's measured 18 transitions for
    a build held 4 s and 81 for one held 40 s;
  * the `.sync` anchor (moto's engine has no CodeBuild integration): ValidateRequest,
    StartBuild as `codebuild:startBuild.sync`, RecordResult, Outcome, Done = 5 transitions and 2
    Lambda invocations, whatever the length.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import STATE_DIR, Stack, read_env, uid  # noqa: E402

EVENT_LENGTHS = [int(x) for x in os.environ.get("BENCH_EVENT_LENGTHS", "5,20,60").split(",")]
FALLBACK_LENGTHS = [int(x) for x in os.environ.get("BENCH_FALLBACK_LENGTHS", "5,20").split(",")]
FALLBACK = int(os.environ.get("BENCH_FALLBACK_SECONDS", "10"))
TRANSITION_USD = 0.025 / 1000
REQUEST_USD = 0.20 / 1_000_000
# Lambda compute: ~50 ms at 256 MB per invocation, arm64 $0.0000133334 per GB-s (an estimate).
COMPUTE_USD = 0.05 * 0.25 * 0.0000133334


def config(stack: Stack, seconds: int | None = None) -> int:
    if seconds is not None:
        stack.wait_idle(180)
        status, body, _ = stack.http("POST", f"{stack.inject_url}/config", {"callbackTimeoutSeconds": seconds})
        assert status == 200, body
        time.sleep(1)
    return int(stack.http("GET", f"{stack.inject_url}/config")[1]["callbackTimeoutSeconds"])


def run(stack: Stack, lengths: list[int], drop: bool) -> list[dict]:
    runs, seen, stop = [], {}, threading.Event()

    def watch(name: str) -> None:
        while not stop.is_set():
            rec = stack.record(name)
            if rec and rec["status"] != "RUNNING":
                seen[name] = time.time()
                return
            time.sleep(0.05)

    for seconds in lengths:
        name = f"bench-{seconds}s-{uid()}"
        stack.script({"match": name, "seconds": seconds})
        if drop:
            stack.http("POST", f"{stack.inject_url}/codebuild/events", {"drop": True, "match": name})
        runs.append((seconds, name, stack.start(name, stack.request())))
        threading.Thread(target=watch, args=(name,), daemon=True).start()
    out = []
    for seconds, name, arn in runs:
        d = stack.wait(arn, timeout=seconds + 120)
        deadline = time.monotonic() + 10
        while name not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        events = stack.history(arn)
        rec = stack.record(name)
        end = stack.build(rec["codebuild"]["buildId"])["endTime"]
        end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
        tasks = sum(1 for e in events if e["type"] == "TaskScheduled")
        handler = len(stack.invocations("build-events", name))
        out.append({"seconds": seconds, "status": d["status"],
                    "transitions": sum(1 for e in events if e["type"].endswith("StateEntered")),
                    "historyEvents": len(events), "invocations": tasks + handler,
                    "engineInvocations": tasks, "eventHandlerInvocations": handler,
                    "lagSeconds": round(seen[name] - end.timestamp(), 2)})
    stop.set()
    return out


def old_loop(seconds: int, pmin: int, pmax: int) -> dict:
    """The poll loop's cost for a build of `seconds` in one phase (poll.rs at 896b71d)."""
    t, polls, wait = 0, 0, pmin
    while True:
        t += wait
        polls += 1
        if t >= seconds:
            break
        wait = max(1, min(max(t // 5, pmin), pmax))
    return {"transitions": 6 + 3 * polls, "invocations": 3 + polls, "lagSeconds": t - seconds}


def usd(transitions: int, invocations: int) -> float:
    return transitions * TRANSITION_USD + invocations * (REQUEST_USD + COMPUTE_USD)


def main() -> int:
    env = read_env(STATE_DIR / "env")
    stack = Stack(env)
    stack.reset()
    original = config(stack)
    try:
        config(stack, max(EVENT_LENGTHS) + 60)
        events = run(stack, EVENT_LENGTHS, drop=False)
        config(stack, FALLBACK)
        fallback = run(stack, FALLBACK_LENGTHS, drop=True)
    finally:
        config(stack, original)
        stack.reset()

    rows = []
    print(f"{'path':<30}{'build':>7}{'transitions':>13}{'invocations':>13}{'lag s':>8}{'USD/build':>12}")
    for label, results in ((f"events", events), (f"fallback {FALLBACK} s (events lost)", fallback)):
        for r in results:
            cost = usd(r["transitions"], r["invocations"])
            print(f"{label:<30}{r['seconds']:>6}s{r['transitions']:>13}{r['invocations']:>13}"
                  f"{r['lagSeconds']:>8}{cost:>12.6f}")
            rows.append({"path": label, **r, "usd": cost})
    for label, pmin, pmax in (("old loop, AWS 10/300 s", 10, 300), ("old loop, local 1/2 s", 1, 2)):
        for seconds in sorted(set(EVENT_LENGTHS + [4, 40, 300, 1800])):
            r = old_loop(seconds, pmin, pmax)
            cost = usd(r["transitions"], r["invocations"])
            print(f"{label + ' (computed)':<30}{seconds:>6}s{r['transitions']:>13}{r['invocations']:>13}"
                  f"{r['lagSeconds']:>8}{cost:>12.6f}")
            rows.append({"path": label + " (computed)", "seconds": seconds, **r, "usd": cost})
    cost = usd(5, 2)
    print(f"{'.sync anchor (computed)':<30}{'any':>7}{5:>13}{2:>13}{'n/a':>8}{cost:>12.6f}")
    rows.append({"path": ".sync anchor (computed)", "transitions": 5, "invocations": 2, "usd": cost})
    (STATE_DIR / "bench-pipeline.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"(saved to {STATE_DIR / 'bench-pipeline.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
