"""moto as the engine: the pinned version, the server with state machine execution on, clients
for it, and the real ASL definition with only its `${...}` placeholders substituted."""
from __future__ import annotations

import json
import os
import re
import threading
import urllib.request
from typing import Any

from .config import MOTO_VERSION, REGION, StackError, checked_originals
from .process import ensure_free


PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def function_for_placeholder(name: str, functions: set[str]) -> str | None:
    """`ValidateRequestFunctionArn` -> `validate-request` when that binary exists."""
    m = re.fullmatch(r"([A-Z][A-Za-z0-9]*)FunctionArn", name)
    if not m:
        return None
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", m.group(1)).lower()
    return kebab if kebab in functions else None


def substitute(definition: str, functions: set[str], extra: dict[str, str] | None = None) -> str:
    """Replace every `${Name}` in an ASL definition; fail naming all the unknown ones.

    `${XxxFunctionArn}` becomes the bare function name `xxx` (the local runtime routes by binary
    name), provided such a binary exists; `extra` maps any other placeholder. Nothing else in the
    definition is touched.
    """
    extra = extra or {}
    values: dict[str, str] = {}
    unknown: list[str] = []
    for name in dict.fromkeys(PLACEHOLDER.findall(definition)):
        value = extra.get(name) or function_for_placeholder(name, functions)
        if value is None:
            unknown.append(name)
        else:
            values[name] = value
    if unknown:
        raise StackError(
            "unknown placeholder(s) in the state machine definition: "
            + ", ".join("${%s}" % u for u in unknown)
            + f" (known: ${{<Name>FunctionArn}} for the binaries {sorted(functions)}"
            + (f", and {sorted(extra)}" if extra else "")
            + "; add others to substitute()'s extra in local/agentbuild_local/engine.py)"
        )
    out = PLACEHOLDER.sub(lambda m: values[m.group(1)], definition)
    json.loads(out)  # the substituted text must still be JSON
    return out


def check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise StackError(
            f"local/stack.py patches moto {MOTO_VERSION}'s Lambda backend, but moto "
            f"{moto.__version__} is installed; run scripts/tools.sh (or re-check the bridge "
            f"against the new version and update MOTO_VERSION and the pin together)"
        )


def start_moto(port: int):
    """Start moto on 127.0.0.1:port (0 = a free port); returns (server, port)."""
    from moto.server import ThreadedMotoServer

    ensure_free(port, "moto")  # ThreadedMotoServer.start() would wait forever on a busy port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    # The ASL engine calls Lambda (and other services) through localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    config = json.dumps({"stepfunctions": {"execute_state_machine": True},
                         "lambda": {"use_docker": False}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/config", data=config,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):
        pass
    # GET /moto-api/config does not echo the stepfunctions part; the server runs in this process.
    from moto.core.config import default_user_config

    if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
        raise StackError(f"moto did not enable state machine execution: {default_user_config}")
    return server, port


_CLIENTS: dict[tuple[str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def aws_client(service: str, endpoint: str):
    """One boto3 client per service and endpoint (clients are thread-safe; making one loads
    its service model, ~50 ms of CPU)."""
    import boto3

    with _CLIENTS_LOCK:
        client = _CLIENTS.get((service, endpoint))
        if client is None:
            client = boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                                  aws_access_key_id="local", aws_secret_access_key="local")
            _CLIENTS[(service, endpoint)] = client
        return client


def short_engine_errors(record: Any) -> bool:
    """The engine logs every state error, caught or not, with a repr of the whole state; keep
    the error and its details."""
    if isinstance(record.args, tuple) and len(record.args) == 2:
        record.msg, record.args = "engine: %s", (str(record.args[0])[:600],)
    return True


_ENGINE_ORIGINALS: dict[str, Any] = {}
RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def rfc3339_to_naive_utc(string: Any):
    """An ASL timestamp as Step Functions accepts it — RFC 3339, `T`, fractional seconds
    allowed, `Z` or a numeric offset — as a naive UTC datetime (moto compares naive ones); None
    for anything else."""
    from datetime import datetime, timedelta

    m = RFC3339.fullmatch(string) if isinstance(string, str) else None
    if m is None:
        return None
    try:
        at = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    at += timedelta(microseconds=int((m.group(2) or "0")[:6].ljust(6, "0")))
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        at -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return at


def install_engine_fixes() -> None:
    """Two places where moto's ASL engine (MOTO_VERSION; signatures checked first) is not
    Step Functions, both on the pipeline's failure paths:

    * Choice timestamp comparisons (`TimestampLessThanPath`, ...) accept only whole seconds
      with `Z` — not even moto's own `$$.State.EnteredTime` (microseconds, `+00:00`) — so every
      such rule is false: BeforeDeadline always took its Default (CheckGaveUp) and a CheckBuild
      failing past its retries always ended the build. Step Functions accepts RFC 3339 with
      fractional seconds.
    * An execution stopped (StopExecution) or timed out while a Task attempt is in flight ended
      FAILED with that attempt's error when the attempt failed (`Environment.set_error`
      replaced the stopped state). On AWS it is ABORTED / TIMED_OUT.
    """
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.is_operator import (  # noqa: E501
        IsTimestamp,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut

    checked_originals(_ENGINE_ORIGINALS, {
        (IsTimestamp, "string_to_timestamp"): "(string: str) -> datetime.datetime | None",
        (Environment, "set_error"): "(self, error: 'ExecutionFailedEventDetails') -> 'None'",
    }, "local/agentbuild_local/engine.py")
    set_error = _ENGINE_ORIGINALS["set_error"]

    def set_error_unless_ended(self: Any, error: Any) -> None:
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)):
            return
        set_error(self, error)

    IsTimestamp.string_to_timestamp = staticmethod(rfc3339_to_naive_utc)
    Environment.set_error = set_error_unless_ended
    install_sfn_integration_fix()
    install_map_tolerance_fix()
    install_stop_execution_fix()


_STOP_ORIGINALS: dict[str, Any] = {}


def install_stop_execution_fix() -> None:
    """moto's StopExecution drops the request's `error` and `cause`: the ABORTED execution
    describes neither, nor does its status-change event. On AWS both are kept, and the
    last-resort closer of an execution a cancel aborted writes the record the cancel would
    (`Cancelled`); without them, a closer that came before the cancel's own write closed it as
    a plain STOPPED, and the cancel answered "finished on its own" (seen under load). The fix
    keeps them on an execution the call stopped (one that was still running)."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.responses import StepFunctionResponse

    checked_originals(_STOP_ORIGINALS, {
        (StepFunctionResponse, "stop_execution"): "(self) -> moto.core.responses.ActionResult",
    }, "local/agentbuild_local/engine.py")
    stop_execution = _STOP_ORIGINALS["stop_execution"]

    def stop_keeping_error_and_cause(self: Any) -> Any:
        error, cause = self._get_param("error"), self._get_param("cause")
        try:
            execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
            running = getattr(execution, "exec_worker", None) is not None and \
                not isinstance(execution.exec_worker.env.program_state(), ProgramStopped)
        except Exception:  # unknown or malformed: the original answers it
            execution, running = None, False
        result = stop_execution(self)
        if running and isinstance(execution.exec_worker.env.program_state(), ProgramStopped):
            # The engine reflects a stop as ABORTED and leaves error and cause alone.
            execution.error, execution.cause = error, cause
        return result

    StepFunctionResponse.stop_execution = stop_keeping_error_and_cause


_SFN_ORIGINALS: dict[str, Any] = {}


def install_sfn_integration_fix() -> None:
    """moto's `states:startExecution(.sync|.sync:2)` integration cannot start anything: its
    request normalisation (LocalStack's maps ASL's `StateMachineArn`, `Name`, `Input` onto the
    API's `stateMachineArn`, ...) is a no-op in moto, so botocore fails with KeyError
    'StateMachineArn' (seen: every such Task ended States.Runtime). The fix does what Step
    Functions does, with botocore's own model of the API: request members by their API names,
    response members PascalCased (`ExecutionArn`, `Status`, `Output`, as `.sync:2` returns them),
    times in epoch milliseconds (moto's history cannot hold botocore's datetimes).
    """
    from datetime import datetime

    import botocore.session
    from botocore import xform_name
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
        StateTaskServiceSfn,
    )

    checked_originals(_SFN_ORIGINALS, {
        (StateTaskServiceSfn, "_normalise_parameters"):
            "(self, parameters: dict, boto_service_name: str | None = None, "
            "service_action_name: str | None = None) -> None",
        (StateTaskServiceSfn, "_normalise_response"):
            "(self, response: 'Any', boto_service_name: 'str | None' = None, "
            "service_action_name: 'str | None' = None) -> 'None'",
        (StateTaskServiceSfn, "_to_boto_request"):
            "(self, parameters: 'dict', structure_shape: 'StructureShape') -> 'None'",
        (StateTaskServiceSfn, "_from_boto_response"):
            "(self, response: 'Any', structure_shape: 'StructureShape') -> 'None'",
    }, "local/agentbuild_local/engine.py")
    model = botocore.session.get_session().get_service_model("stepfunctions")
    operations = {xform_name(name): model.operation_model(name) for name in model.operation_names}
    normalise_parameters = _SFN_ORIGINALS["_normalise_parameters"]

    def operation(self: Any, service_action_name: str | None):
        return operations.get(self._get_boto_service_action(service_action_name))

    def parameters_by_api_name(self: Any, parameters: dict, boto_service_name: str | None = None,
                               service_action_name: str | None = None) -> None:
        normalise_parameters(self, parameters, boto_service_name, service_action_name)
        op = operation(self, service_action_name)
        if op is not None and op.input_shape is not None:
            self._to_boto_request(parameters, op.input_shape)

    def response_pascal_cased(self: Any, response: Any, boto_service_name: str | None = None,
                              service_action_name: str | None = None) -> None:
        op = operation(self, service_action_name)
        if op is not None and op.output_shape is not None and isinstance(response, dict):
            response.pop("ResponseMetadata", None)
            for key, value in response.items():
                if isinstance(value, datetime):  # Step Functions answers epoch milliseconds
                    response[key] = int(value.timestamp() * 1000)
            self._from_boto_response(response, op.output_shape)

    StateTaskServiceSfn._normalise_parameters = parameters_by_api_name
    StateTaskServiceSfn._normalise_response = response_pascal_cased


_MAP_ORIGINALS: dict[str, Any] = {}


def install_map_tolerance_fix() -> None:
    """moto's Distributed Map parses ToleratedFailurePercentage(Path) and never applies it ("no
    effect on the program evaluation", it logs): a failed child is counted and dropped, and the
    map always succeeds. On AWS, a Map Run whose failed items exceed that share of its items
    fails with States.ExceedToleratedFailureThreshold. The fix applies it once every item has
    run (AWS stops starting items as soon as the share is exceeded: locally the rest still
    run, and the Map state then fails the same way).
    """
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent, FailureEventException)
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName)
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType)
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent)
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    checked_originals(_MAP_ORIGINALS, {
        (DistributedIterationComponent, "_map_run"):
            "(self, env: 'Environment', eval_input: 'DistributedIterationComponentEvalInput') -> 'None'",
    }, "local/agentbuild_local/engine.py")
    map_run = _MAP_ORIGINALS["_map_run"]

    def map_run_within_tolerance(self: Any, env: Any, eval_input: Any) -> None:
        map_run(self, env, eval_input)
        counter = eval_input.map_run_record.item_counter
        total, failed = counter.total.get(), counter.failed.get() + counter.timed_out.get()
        tolerated = float(eval_input.tolerated_failure_percentage or 0)
        if total and failed * 100.0 > tolerated * total:
            cause = (f"{failed} of {total} items failed: more than the tolerated "
                     f"{tolerated:g} %")
            error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            raise FailureEventException(FailureEvent(
                env=env, error_name=error, event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=error.error_name, cause=cause))))

    DistributedIterationComponent._map_run = map_run_within_tolerance
