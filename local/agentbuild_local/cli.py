"""agentbuild's local stack: AWS emulated on loopback, the real ASL definition in a real engine,
the real Rust handlers answering its Lambda tasks.

    local/stack.py up      # build the handlers, start everything in the background, wait until healthy
    local/stack.py down    # stop every process `up` started (by process group), remove .local/*.pid
    local/stack.py status  # exit 0 when the stack answers
    local/stack.py env     # print .local/env

Pieces (one `serve` process, started by `up`, plus one `cargo lambda watch` process group):
  * moto's ThreadedMotoServer (S3, ECR, CodeBuild, Step Functions with LocalStack's ASL engine);
  * a bridge replacing moto's no-Docker Lambda backend: every Lambda invoke by the engine goes to
    `cargo lambda watch` (the workspace's real binaries), unless a test queued an injection;
  * the injection endpoint (AGENTBUILD_INJECT_URL), documented in local/README.md: queued Lambda
    outcomes, and scripts for moto's CodeBuild (builds that keep running until stopped, fail in
    a phase, or export variables);
  * the API's front door (AGENTBUILD_API_URL, front_door.py): SigV4 and the caller's IAM
    policies checked as API Gateway does, then the real api handler;
  * the resources: bucket, ECR repository, CodeBuild project, the state machine from
    statemachine/build.asl.json with only its ${...} placeholders substituted.

Runs in the project's .venv (scripts/tools.sh). The bridge patches one moto method and the
CodeBuild scripts three, so the moto version is pinned and asserted (and their signatures).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .agentcore import AgentCoreScripts, install_agentcore_patches
from .dataplane import LocalAgents, install_dataplane
from .codebuild import CodeBuildScripts, install_codebuild_scripts
from .ecr_signing import install_signing
from .codebuild_real import RealBuilds
from .codebuild_events import EventDelivery
from .config import (BUCKET, CODEBUILD_PROJECT, DEFINITION, DUMMY_CREDENTIALS, FLEET_DEFINITION,
                     HANDLER_SETTINGS,
                     MOTO_VERSION, REGION, ROOT, STACK_PY, STATE_DIR, StackError, log, read_env,
                     tool_env, write_env)
from .engine import (aws_client, check_moto_version, install_engine_fixes, short_engine_errors, start_moto,
                     substitute)
from .events import relay_ended_executions
from .front_door import API_ID, make_front_door
from .handlers import Handlers, handler_commands, prebuild, start_watch
from .inject_server import make_inject_server
from .lambda_bridge import Injector, install_lambda_bridge
from .process import alive, ensure_free, free_port, pid_file, read_pid, stop_group, wait_for_port
from .s3fixes import install_s3_fixes
from .speedups import bare_batch_package, install_server_speedups
from .resources import (BUCKET_DIR, IMAGES_FILE, create_fleet_machine, create_resources,
                        restore_bucket, restore_images, save_bucket, save_images)
from .workspace import LAMBDA_FUNCTIONS, workspace_binaries


def api_url(watch_port: int, binaries: set[str]) -> str | None:
    """The api Lambda behind cargo lambda's function-URL route (the front door forwards to it)."""
    if "api" in binaries:
        return f"http://127.0.0.1:{watch_port}/lambda-url/api"
    return None


def fleet_definition(binaries: set[str], build_machine_arn: str) -> str:
    """statemachine/rebuild.asl.json: `${RebuildFunctionArn}` -> `rebuild` as any function,
    `${BuildStateMachineArn}` -> the local build machine."""
    return substitute(FLEET_DEFINITION.read_text(), binaries,
                      {"BuildStateMachineArn": build_machine_arn})


def cmd_serve(args: argparse.Namespace) -> int:
    """Foreground: run the whole stack until SIGTERM/SIGINT. `up` runs this in the background."""
    check_moto_version()
    bare_batch_package()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").addFilter(
        short_engine_errors)
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / "ready").unlink(missing_ok=True)
    manifest = Path(args.manifest_path).resolve()
    binaries = workspace_binaries(manifest)
    definition = substitute(Path(args.definition).read_text(), binaries)

    injector = Injector()
    ensure_free(args.inject_port, "injection endpoint")
    ensure_free(args.watch_port, "cargo lambda watch")
    # EventBridge's rule on the project's CodeBuild events -> build-events (when it exists).
    delivery = EventDelivery(drop_all=os.environ.get("AGENTBUILD_LOCAL_DROP_CODEBUILD_EVENTS") == "1")
    codebuild = CodeBuildScripts(delivery if "build-events" in binaries else None)
    real_builds = RealBuilds(delivery if "build-events" in binaries else None)
    install_codebuild_scripts(codebuild, real_builds)
    agentcore = AgentCoreScripts()
    install_agentcore_patches(agentcore)
    install_signing()
    install_dataplane(LocalAgents())
    install_engine_fixes()
    install_s3_fixes()
    install_server_speedups()
    handler_settings: dict[str, str] = dict(HANDLER_SETTINGS)
    handlers_box: list[Handlers] = []

    def reconfigure(values: dict[str, str]) -> list[str]:
        handler_settings.update(values)
        return handlers_box[0].reconfigure(values) if handlers_box else []

    inject = make_inject_server(injector, args.inject_port, codebuild, reconfigure, handler_settings, agentcore)
    threading.Thread(target=inject.serve_forever, daemon=True).start()
    inject_url = f"http://127.0.0.1:{inject.server_address[1]}"

    watch_port = args.watch_port or free_port()
    runtime_url = f"http://127.0.0.1:{watch_port}"
    wanted = [f for f in args.functions.split(",") if f]
    handler_cmds = None if args.reload else handler_commands(manifest, wanted, binaries)
    install_lambda_bridge(runtime_url, injector, None if args.reload else set(handler_cmds))
    moto_server, moto_port = start_moto(args.moto_port)
    endpoint = f"http://127.0.0.1:{moto_port}"
    delivery.start(endpoint)
    real_builds.endpoint = endpoint
    log(f"moto {MOTO_VERSION} on {endpoint}; injections on {inject_url}")
    created = create_resources(endpoint, definition)
    created["AGENTBUILD_FLEET_STATE_MACHINE_ARN"] = create_fleet_machine(endpoint, fleet_definition(
        binaries, created["AGENTBUILD_STATE_MACHINE_ARN"]))
    if not args.throwaway:
        restore_saved(endpoint)

    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
           **DUMMY_CREDENTIALS}
    handler_env = {**aws, **HANDLER_SETTINGS, **created, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    write_env(STATE_DIR / "handlers.env", handler_env)

    watch = start_watch(manifest, watch_port, STATE_DIR / "handlers.env", args.reload,
                        STATE_DIR / "watch.log")
    pid_file("watch").write_text(f"{watch.pid}\n")

    handlers = Handlers(handler_cmds or {}, watch_port, handler_env)
    handlers_box.append(handlers)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        wait_for_port(watch_port, 60, watch)
        handlers.start_all()
        env = {
            **aws,
            "AGENTBUILD_BUCKET": BUCKET,
            "AGENTBUILD_STATE_MACHINE_ARN": created["AGENTBUILD_STATE_MACHINE_ARN"],
            "AGENTBUILD_FLEET_STATE_MACHINE_ARN": created["AGENTBUILD_FLEET_STATE_MACHINE_ARN"],
            "AGENTBUILD_REPOSITORY_URI": created["AGENTBUILD_REPOSITORY_URI"],
            "AGENTBUILD_CODEBUILD_PROJECT": CODEBUILD_PROJECT,
            "AGENTBUILD_LAYER_PROJECT": created["AGENTBUILD_LAYER_PROJECT"],
            "AGENTBUILD_INJECT_URL": inject_url,
            "AGENTBUILD_RUNTIME_URL": runtime_url,
            "AGENTBUILD_BUILD_FINISHED_QUEUE_URL": created["AGENTBUILD_BUILD_FINISHED_QUEUE_URL"],
        }
        url = api_url(watch_port, binaries)
        if url:
            # API Gateway's part, emulated: SigV4 checked, the caller's IAM policies evaluated
            # for execute-api:Invoke on the route (front_door.py); then the real handler.
            front = make_front_door(url, endpoint)
            threading.Thread(target=front.serve_forever, daemon=True).start()
            env["AGENTBUILD_API_URL"] = f"http://127.0.0.1:{front.server_address[1]}"
            env["AGENTBUILD_API_ID"] = API_ID
        write_env(STATE_DIR / "env", env)
        if "record-result" in binaries:
            threading.Thread(target=relay_ended_executions, daemon=True, args=(
                endpoint, created["AGENTBUILD_STATE_MACHINE_ARN"], stopping)).start()
        (STATE_DIR / "ready").write_text(f"{os.getpid()}\n")
        log(f"ready: state machine {created['AGENTBUILD_STATE_MACHINE_ARN']}, handlers on {runtime_url}")
        while not stopping.wait(1):
            if watch.poll() is not None:
                raise StackError(f"cargo lambda watch exited with {watch.returncode}; see .local/watch.log")
            handlers.supervise()
    finally:
        (STATE_DIR / "ready").unlink(missing_ok=True)
        handlers.stop()
        stop_group(watch.pid, "cargo lambda watch")
        pid_file("watch").unlink(missing_ok=True)
        inject.shutdown()
        if not args.throwaway:
            try:
                log(f"saved {save_images()} images of the repository to {IMAGES_FILE}")
                log(f"saved {save_bucket(endpoint)} objects of {BUCKET} to {BUCKET_DIR}")
            except Exception as e:  # never block stopping on it
                log(f"could not save {BUCKET}: {e}")
        moto_server.stop()
        log("stopped")
    return 0


def restore_saved(endpoint: str) -> None:
    """The bucket's objects and the repository's images the last stop saved (a rebuild is what
    an unreadable images file costs)."""
    restored = restore_bucket(endpoint)
    if restored:
        log(f"restored {restored} objects of {BUCKET} from {BUCKET_DIR}")
    try:
        if images := restore_images():
            log(f"restored {images} images of the repository from {IMAGES_FILE}")
    except Exception as e:  # an unreadable file only costs a rebuild
        log(f"could not restore the repository's images: {e!r}")


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    check_moto_version()
    STATE_DIR.mkdir(exist_ok=True)
    if alive(read_pid("stack")) and (STATE_DIR / "ready").exists():
        log("already up (local/stack.py down first to restart)")
        print((STATE_DIR / "env").read_text(), end="")
        return 0
    if alive(read_pid("stack")) or alive(read_pid("watch")):
        raise StackError("a previous stack is still running but not ready; run local/stack.py down")
    manifest = Path(args.manifest_path).resolve()
    binaries = workspace_binaries(manifest)
    # Fail before starting anything if a definition cannot be substituted.
    substitute(Path(args.definition).read_text(), binaries)
    fleet_definition(binaries, "arn:aws:states:us-east-1:123456789012:stateMachine:check")
    if not args.no_build:
        prebuild(manifest, binaries, args.functions.split(","), args.reload)
    if args.build_only:
        return 0
    if not args.reload:
        handler_commands(manifest, args.functions.split(","), binaries)  # fail now if one is missing

    (STATE_DIR / "env").unlink(missing_ok=True)
    serve = [sys.executable, str(STACK_PY), "serve", "--functions", args.functions,
             "--moto-port", str(args.moto_port), "--watch-port", str(args.watch_port),
             "--inject-port", str(args.inject_port), "--manifest-path", str(manifest),
             "--definition", str(Path(args.definition).resolve())]
    if args.reload:
        serve.append("--reload")
    if args.throwaway:
        serve.append("--throwaway")
    out = open(STATE_DIR / "stack.log", "ab")
    proc = subprocess.Popen(serve, cwd=ROOT, env=tool_env(), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file("stack").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + args.timeout
    while not (STATE_DIR / "ready").exists():
        if proc.poll() is not None:
            tail = (STATE_DIR / "stack.log").read_text(errors="replace").splitlines()[-15:]
            cmd_down(args)
            raise StackError("the stack exited while starting:\n  " + "\n  ".join(tail))
        if time.monotonic() > deadline:
            cmd_down(args)
            raise StackError(f"not ready after {args.timeout} s; see .local/stack.log")
        time.sleep(0.2)
    health_check(read_env(STATE_DIR / "env"))
    log(f"up in {time.monotonic() - t0:.1f} s; environment in {STATE_DIR / 'env'}:")
    print((STATE_DIR / "env").read_text(), end="")
    return 0


def health_check(env: dict[str, str]) -> None:
    for url in (f"{env['AWS_ENDPOINT_URL']}/moto-api/config", f"{env['AGENTBUILD_INJECT_URL']}/health"):
        with urllib.request.urlopen(url, timeout=5) as resp:
            if resp.status != 200 and resp.status != 201:
                raise StackError(f"{url} answered {resp.status}")
    sfn = aws_client("stepfunctions", env["AWS_ENDPOINT_URL"])
    sfn.describe_state_machine(stateMachineArn=env["AGENTBUILD_STATE_MACHINE_ARN"])


def cmd_down(args: argparse.Namespace) -> int:
    # The serve process first: it stops watch itself. Then whatever is left of the watch group
    # (serve was killed, say); stop_group also ends the handlers, which have sessions of their own.
    for name, what in (("stack", "stack server"), ("watch", "cargo lambda watch")):
        pid = read_pid(name)
        if pid:
            stop_group(pid, what)
            log(f"stopped {what} (process group {pid})")
        pid_file(name).unlink(missing_ok=True)
    for name in ("ready", "env", "handlers.env"):
        (STATE_DIR / name).unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        if not (alive(read_pid("stack")) and (STATE_DIR / "ready").exists()):
            raise StackError("down")
        health_check(read_env(STATE_DIR / "env"))
    except Exception as e:  # noqa: BLE001 - any failure means "not healthy"
        print(f"local stack: not running ({e})")
        return 1
    print("local stack: up")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    path = STATE_DIR / "env"
    if not path.exists():
        raise StackError("no .local/env: run local/stack.py up")
    print(path.read_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    env_int = lambda name: int(os.environ.get(name, "0"))  # noqa: E731
    for name, fn in (("up", cmd_up), ("serve", cmd_serve), ("down", cmd_down),
                     ("status", cmd_status), ("env", cmd_env)):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        if name in ("up", "serve"):
            s.add_argument("--moto-port", type=int, default=env_int("AGENTBUILD_LOCAL_MOTO_PORT"),
                           help="0 = a free port (default; env AGENTBUILD_LOCAL_MOTO_PORT)")
            s.add_argument("--watch-port", type=int, default=env_int("AGENTBUILD_LOCAL_WATCH_PORT"))
            s.add_argument("--inject-port", type=int, default=env_int("AGENTBUILD_LOCAL_INJECT_PORT"))
            s.add_argument("--manifest-path", default=str(ROOT / "Cargo.toml"),
                           help="the Cargo workspace whose binaries answer the Lambda tasks")
            s.add_argument("--definition", default=str(DEFINITION))
            s.add_argument("--reload", action="store_true",
                           help="let cargo lambda watch recompile on source changes")
            s.add_argument("--functions", default=",".join(LAMBDA_FUNCTIONS),
                           help="the Lambda binaries to build and run (those that exist)")
            s.add_argument("--throwaway", action="store_true",
                           help="neither restore the bucket and images at start nor save them at stop")
        if name == "up":
            s.add_argument("--no-build", action="store_true", help="skip the debug pre-build")
            s.add_argument("--build-only", action="store_true",
                           help="only the pre-build: start nothing (scripts/e2e.sh, then `up --no-build`s)")
            s.add_argument("--timeout", type=int, default=180)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except StackError as e:
        print(f"local/stack.py {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
