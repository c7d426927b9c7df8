"""Three places where moto's server (MOTO_VERSION; signatures checked first) recomputes, on every
request or every execution, what never changes for the life of the stack. Each is cached here;
nothing answers differently. Measured with py-spy on a stack running the fault matrix: these
took about a third of the server's busy samples, and the end-to-end suite's five stacks share
two cores (docs/testing.md).

* Which backend a request is for: `DomainDispatcherApplication.get_backend_for_host` lists moto's
  package directory (one `stat` per service, ~190) and then tries every service's URL patterns,
  under the dispatcher's one lock, for each request. The answer depends only on the host string
  (the directory and the patterns are fixed), so it is kept per host.
* The ASL definition: every StartExecution lexes and parses the whole definition with ANTLR's
  Python runtime (the slowest part of an execution's start). The parse tree depends only on the
  definition's text and is only read afterwards, so it is kept per text; the evaluation
  components are still built anew from it for each execution (`Preprocessor`), as before.
* The engine's AWS clients: each Lambda Task (and each S3 read of a Map, each nested execution)
  creates a new boto3 client (`boto_client_for`: loading the service model, building the
  client class) to call moto's own endpoint. The client depends only on the region and service
  (the endpoint, keys and Config are fixed) and botocore clients are safe to share between
  threads, so one is kept per (region, service).
* JSONPath expressions (`$.request.project`, ...): jsonpath_ng builds its parser (ply's tables)
  for each expression evaluated. The parsed expression depends only on its text and is
  immutable, so it is kept per text.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

from .config import checked_originals

# The engine's modules that create a client per call with `boto_client_for` (imported by name).
CLIENT_USERS = (
    "asl.component.state.exec.state_task.lambda_eval_utils",
    "asl.component.state.exec.state_task.service.state_task_service_sfn",
    "asl.component.state.exec.state_task.service.state_task_service_events",
    "asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)

_ORIGINALS: dict[str, Any] = {}
# Bounded: definitions and paths come from our own templates (a handful), hosts from our clients.
MAX_CACHED = 512


def bare_batch_package() -> None:
    """moto's ASL engine imports `moto.batch.utils` for one enum (JobStatus), and moto.batch's
    package `__init__` imports its models and with them all of moto.ec2, which reads EC2's
    service model for its regions: 0.75 s of the ~3 s of CPU a stack takes to start (five start
    at once in `make test`). The stack emulates no Batch: `moto.batch` becomes a bare package
    of the same folder, so `moto.batch.utils` loads alone; a Batch call would fail loudly (the
    package has no backends). Before anything imports moto.batch."""
    import importlib.util
    import sys
    import types

    if "moto.batch" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None or not spec.submodule_search_locations:
        return
    bare = types.ModuleType("moto.batch")
    bare.__path__ = list(spec.submodule_search_locations)
    bare.__package__ = "moto.batch"
    sys.modules["moto.batch"] = bare


def install_server_speedups() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.asl.utils import json_path

    checked_originals(_ORIGINALS, {
        (DomainDispatcherApplication, "get_backend_for_host"): "(self, host: str | None) -> Any",
        (asl_parser.AmazonStateLanguageParser, "parse"):
            "(definition: str) -> tuple[moto.stepfunctions.parser.asl.component.eval_component."
            "EvalComponent, antlr4.ParserRuleContext.ParserRuleContext]",
    }, "local/agentbuild_local/speedups.py")

    backend_for_host = _ORIGINALS["get_backend_for_host"]
    hosts: dict[str | None, Any] = {}

    def cached_backend_for_host(self: Any, host: str | None) -> Any:
        # Called under the dispatcher's lock; the answer is a pure function of `host`.
        if host not in hosts:
            if len(hosts) >= MAX_CACHED:
                hosts.clear()
            hosts[host] = backend_for_host(self, host)
        return hosts[host]

    parse_definition = _ORIGINALS["parse"]
    trees: dict[str, Any] = {}
    trees_lock = threading.Lock()

    def parse_once(definition: str) -> tuple[Any, Any]:
        with trees_lock:
            tree = trees.get(definition)
        if tree is None:
            # The original: syntax errors raise as before (and nothing is kept).
            program, tree = parse_definition(definition)
            with trees_lock:
                if len(trees) >= MAX_CACHED:
                    trees.clear()
                trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    install_shared_clients()
    DomainDispatcherApplication.get_backend_for_host = cached_backend_for_host
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse_once)
    # Both modules imported the name `parse` for themselves.
    json_path.parse = functools.lru_cache(maxsize=MAX_CACHED)(json_path.parse)
    result_path.parse = functools.lru_cache(maxsize=MAX_CACHED)(result_path.parse)


def install_shared_clients() -> None:
    import importlib
    import inspect

    from moto.stepfunctions.parser.asl.utils import boto_client

    expected = "(region: str, service: str, state_credentials: Any = None) -> botocore.client.BaseClient"
    actual = str(inspect.signature(boto_client.boto_client_for))
    if actual != expected:
        from .config import StackError

        raise StackError(f"moto's boto_client_for{actual} is not the {expected} that "
                         "local/agentbuild_local/speedups.py shares; re-check it")
    create = boto_client.boto_client_for
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def shared_client(region: str, service: str, state_credentials: Any = None) -> Any:
        # `state_credentials` is unused by the original too (fixed keys, moto's endpoint).
        with lock:
            if (region, service) not in clients:
                clients[(region, service)] = create(region, service, state_credentials)
            return clients[(region, service)]

    for name in CLIENT_USERS:
        module = importlib.import_module(f"moto.stepfunctions.parser.{name}")
        assert module.boto_client_for is create, f"{name} no longer uses boto_client_for"
        module.boto_client_for = shared_client
    boto_client.boto_client_for = shared_client
