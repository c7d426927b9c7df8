"""The EventBridge rule moto lacks: executions of the build state machine that end FAILED,
TIMED_OUT or ABORTED are sent once to record-result (the last-resort closer), as a "Step
Functions Execution Status Change" event."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .config import ACCOUNT, REGION, log
from .engine import aws_client


RELAYED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def execution_status_change(execution: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's "Step Functions Execution Status Change" event for a described execution."""
    millis = lambda t: int(t.timestamp() * 1000) if t else None  # noqa: E731
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": millis(execution.get("startDate")),
        "stopDate": millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    stopped = execution.get("stopDate")
    return {
        "version": "0",
        "id": f"local-{execution['name']}-{execution['status'].lower()}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": (stopped.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if stopped else None),
        "region": REGION,
        "resources": [execution["executionArn"]],
        "detail": detail,
    }


def relay_ended_executions(endpoint: str, state_machine_arn: str, stopping: threading.Event,
                           function: str = "record-result", period: float = 1.0) -> None:
    """Stand-in for the template's EventBridge rule, which moto does not emulate: each execution
    of the build state machine that ends FAILED, TIMED_OUT or ABORTED is sent once to `function`, through
    the same Lambda bridge as the engine's invokes (logged, injectable). Like an async Lambda
    invoke, a failed delivery is tried twice more."""
    from . import direct_invoke

    sfn = aws_client("stepfunctions", endpoint)
    done: set[str] = set()
    while not stopping.wait(period):
        try:
            for arn in ended_executions(state_machine_arn, done):
                done.add(arn)
                described = sfn.describe_execution(executionArn=arn)
                status = described["status"]
                # moto leaves stopDate unset on TIMED_OUT executions; we see them within a period.
                described.setdefault("stopDate", datetime.now(timezone.utc))
                event = json.dumps(execution_status_change(described), default=str)
                for attempt in range(3):
                    try:
                        answer, error = direct_invoke.invoke(function, event.encode())
                    except Exception as e:  # noqa: BLE001 - a service error: tried again too
                        answer, error = repr(e).encode(), "ServiceError"
                    if error is None:
                        log(f"relayed {described['name']} {status} to {function}")
                        break
                    log(f"relay {described['name']} {status} -> {function}: {answer[:300]!r}"
                        f" (attempt {attempt + 1})")
                    time.sleep(1)
                else:
                    log(f"relay {described['name']} {status} -> {function}: gave up after 3 attempts")
        except Exception as e:  # noqa: BLE001 - keep relaying; the next round retries the listing
            log(f"relay: {e}")


def ended_executions(state_machine_arn: str, done: set[str]) -> list[str]:
    """The machine's executions that ended FAILED, TIMED_OUT or ABORTED and are not in `done`,
    read from moto's backend in this process (the relay runs beside moto's server): a listing
    over HTTP every period cost the idle stack ~6 % of a core once the fault matrix had run."""
    from moto.stepfunctions.responses import get_backend

    machine = get_backend(ACCOUNT, REGION).describe_state_machine(state_machine_arn)
    ended = []
    for execution in list(machine.executions):
        try:
            status = execution.status
        except AttributeError:  # not started yet (no status)
            continue
        if status in RELAYED_STATUSES and execution.execution_arn not in done:
            ended.append(execution.execution_arn)
    return ended
