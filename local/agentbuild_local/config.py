"""The stack's settings and the few helpers every module uses: names of the local resources, the
folder of the env/pid/log files, the error the CLI prints without a traceback, the log line.

Standard library only (as is everything `down`, `status` and `env` import): they run with the
system python3, without the project's .venv.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

LOCAL_DIR = Path(__file__).resolve().parent.parent  # local/
ROOT = LOCAL_DIR.parent
# The entry point: `up` starts `serve` through it, and the stack's pid file is checked against it.
STACK_PY = LOCAL_DIR / "stack.py"
# Where env, pid and log files go; another folder runs a second, independent stack (tests do).
STATE_DIR = Path(os.environ.get("AGENTBUILD_LOCAL_DIR") or ROOT / ".local").resolve()
VENV_BIN = ROOT / ".venv" / "bin"

MOTO_VERSION = "5.2.5"  # lambda_bridge and codebuild patch exactly this version
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "agentbuild-local"
REPOSITORY = "agentbuild"
CODEBUILD_PROJECT = "agentbuild-local"
# The code path's dependency-layer project (template.yaml's LayerProject); its builds run for real.
LAYER_PROJECT = "agentbuild-local-layer"
STATE_MACHINE = "agentbuild-build"
# Where the stack captures outgoing Build Finished events, so tests can read them.
BUILD_FINISHED_QUEUE = "agentbuild-build-finished"
DEFINITION = ROOT / "statemachine" / "build.asl.json"
# The fleet-rebuild machine: a Distributed Map whose children are executions of STATE_MACHINE.
FLEET_STATE_MACHINE = "agentbuild-fleet-rebuild"
FLEET_DEFINITION = ROOT / "statemachine" / "rebuild.asl.json"
# moto checks only the shape of these ARNs; nothing assumes them.
CODEBUILD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-codebuild"
STATES_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-states"
RUNTIME_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-runtime"
ALLOWED_RUNTIME_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-runtime-allowed"

# Handler configuration (docs/contracts.md).
HANDLER_SETTINGS = {
    "AGENTBUILD_BUCKET": BUCKET,
    # The template's AWS::StackName: the agentbuild:stack tag and the stack part of default
    # runtime names. Another name (AGENTBUILD_LOCAL_STACK_NAME, or POST /config {"stackName"})
    # is another stack of the same account.
    "AGENTBUILD_STACK_NAME": os.environ.get("AGENTBUILD_LOCAL_STACK_NAME", "agentbuild-local"),
    "AGENTBUILD_CODEBUILD_PROJECT": CODEBUILD_PROJECT,
    "AGENTBUILD_LAYER_PROJECT": LAYER_PROJECT,
    "AGENTBUILD_BUILD_TIMEOUT_MINUTES": "60",
    "AGENTBUILD_QUEUED_TIMEOUT_MINUTES": "30",
    # The fallback: how long a build waits for CodeBuild's completion event before CheckBuild
    # looks (the template's CallbackTimeoutSeconds, 600 s). Short, so that a lost event costs a
    # test seconds; tests that need it longer change it through the injection endpoint.
    "AGENTBUILD_CALLBACK_TIMEOUT_SECONDS": os.environ.get("AGENTBUILD_LOCAL_CALLBACK_TIMEOUT_SECONDS", "5"),
    # The fleet rebuild's MaxConcurrency (N) and ToleratedFailurePercentage: small, so that a
    # local run (and tests/e2e/test_rebuild.py) shows the bound.
    "AGENTBUILD_REBUILD_MAX_CONCURRENCY": "4",
    "AGENTBUILD_REBUILD_TOLERATED_FAILURE_PERCENTAGE": "10",
    # Build Finished events go to moto's default bus; a rule sends them to BUILD_FINISHED_QUEUE.
    "AGENTBUILD_EVENT_BUS": "default",
    # The deploy step: the stack's runtime role, one allowed other role (tests name it), and
    # short waits (moto's runtimes are READY at the second look; see agentcore.py).
    "AGENTBUILD_RUNTIME_ROLE_ARN": RUNTIME_ROLE,
    "AGENTBUILD_ALLOWED_RUNTIME_ROLES": ALLOWED_RUNTIME_ROLE,
    # Build secrets by reference: the template's BuildSecretArnPrefix (empty would turn them off).
    "AGENTBUILD_BUILD_SECRET_ARN_PREFIX": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agentbuild/",
    "AGENTBUILD_DEPLOY_POLL_SECONDS": "1",
    "AGENTBUILD_DEPLOY_TIMEOUT_SECONDS": "120",
    # AGENTBUILD_REPOSITORY_URI and AGENTBUILD_STATE_MACHINE_ARN come from the created resources.
}
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


class StackError(Exception):
    """A problem the user can fix; printed without a traceback."""


def log(msg: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_env(path: Path, values: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    tmp.replace(path)


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def checked_originals(cache: dict, expected: dict, patcher: str) -> dict:
    """The moto methods `patcher` replaces, each checked against the signature it was written
    for (the pinned moto's), fetched once into `cache`: a moto whose methods changed stops the
    stack instead of being patched blindly."""
    import inspect

    if not cache:
        for (cls, name), sig in expected.items():
            actual = str(inspect.signature(getattr(cls, name)))
            if actual != sig:
                raise StackError(f"moto's {cls.__name__}.{name}{actual} is not the {sig} that "
                                 f"{patcher} patches; re-check its patches")
            cache[name] = getattr(cls, name)
    return cache
