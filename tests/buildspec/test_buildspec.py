"""Harness for buildspec.yml: its commands run the way CodeBuild runs them, over hostile contexts.

CodeBuild (buildspec 0.2, `shell: bash`) runs every command of every phase, in order, in ONE bash
shell that starts in the build context ($CODEBUILD_SRC_DIR): variables and the working directory
carry over from one command to the next, a failing command stops the build (on-failure: ABORT),
and the exported-variables are read from that shell at the end. The harness does the same: one
`bash` process, cwd = a temporary context, CODEBUILD_SRC_DIR set to it.

Stand-in `aws`, `docker` and `uname` come first on PATH; they log their argv (JSON lines) and
answer what the buildspec asks (ECR login, describe-images found / ImageNotFoundException,
buildx create/build, the binfmt `docker run`). The context is full of traps, each of which
writes a marker file OUTSIDE the context if it is ever run, imported or sourced: Python modules
and packages named like the standard library, sitecustomize.py / usercustomize.py / a .pth
(reachable through PYTHONPATH and PYTHONUSERBASE, which point into the context), executables
named like the tools the buildspec runs (and PATH holds an empty and a "." entry, i.e. the
current directory, ahead of the real tools), shell start-up files, a .docker/config.json, and a
Dockerfile whose `# syntax=` line names another frontend. No test may leave a marker behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILDSPEC = ROOT / "buildspec.yml"
PHASES = ("install", "pre_build", "build", "post_build")

ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
REPO = f"{REGISTRY}/agentbuild-images"
CACHE_REPO = f"{REGISTRY}/agentbuild-cache"
TAG = "nexus-ai.sales-assistant-0123456789abcdef01234567"
FORCED_TAG = f"{TAG}-r0123456789"
CACHE_TAG = "nexus-ai.sales-assistant.arm64"
# Test values, not claims about any real image: the real defaults live in template.yaml.
BUILDKIT = "moby/buildkit:v0.0.0@sha256:" + "b" * 64
BINFMT = "tonistiigi/binfmt:qemu-v0.0.0@sha256:" + "c" * 64
FRONTEND = "docker/dockerfile:1.0.0@sha256:" + "d" * 64
BUILT = "sha256:" + "1" * 64
BUCKET = "agentbuild-bucket"
ATTESTATIONS = f"s3://{BUCKET}/attestations/{TAG}/"
EXISTING = "sha256:" + "2" * 64
RACED = "sha256:" + "3" * 64

# What a caller may put in build args: shell syntax must reach docker as inert text.
HOSTILE_VALUES = {
    "SUBST": "$(touch {markers}/pwned-subst)",
    "QUOTE": '"; touch {markers}/pwned-quote; echo "',
    "TICKS": "`touch {markers}/pwned-ticks`",
    "SPACES": "a b\tc\nd",
    "PYTHON_VERSION": "3.12",
}

STDLIB_TRAPS = ("re", "os", "tempfile", "subprocess", "shlex", "typing", "enum", "functools",
                "codecs", "io", "abc", "stat", "posixpath", "genericpath", "site",
                "usercustomize")
TOOL_TRAPS = ("aws", "docker", "python3", "python", "uname", "sed", "grep", "tee", "cat",
              "mktemp", "mkdir", "bash", "sh", "env", "rm", "id", "touch", "printf", "jq",
              "docker-credential-evil", "pyenv")
RC_TRAPS = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".bash_logout", ".zshrc")


# --------------------------------------------------------------------------- the stand-ins

FAKE_COMMON = textwrap.dedent("""\
    import json, os, sys

    def log(tool, **extra):
        entry = {"tool": tool, "argv": sys.argv[1:], "cwd": os.getcwd(),
                 "docker_config": os.environ.get("DOCKER_CONFIG"),
                 "source_policy_env": os.environ.get("EXPERIMENTAL_BUILDKIT_SOURCE_POLICY"),
                 "path": os.environ.get("PATH", "")}
        entry.update(extra)
        with open(os.environ["FAKE_LOG"], "a") as f:
            f.write(json.dumps(entry) + "\\n")

    def logged():
        try:
            with open(os.environ["FAKE_LOG"]) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
    """)

FAKE_AWS = FAKE_COMMON + textwrap.dedent("""\
    log("aws")
    args = sys.argv[1:]
    if args[:2] == ["ecr", "get-login-password"]:
        print("fake-ecr-password")
    elif args[:2] == ["ecr", "describe-images"]:
        built = any(e["tool"] == "docker" and e["argv"][:2] == ["buildx", "build"] for e in logged())
        digest = os.environ.get("FAKE_EXISTING_DIGEST") or (
            built and os.environ.get("FAKE_PUSH_CONFLICT_DIGEST"))
        if digest:
            print(digest)
        else:
            print("An error occurred (ImageNotFoundException) when calling the DescribeImages "
                  "operation: The image with imageId {imageTag:'x'} does not exist", file=sys.stderr)
            sys.exit(254)
    elif args[:2] == ["s3api", "put-object"]:
        body = args[args.index("--body") + 1]
        log("aws", body=open(body).read())
    else:
        print("fake aws: unexpected call", args, file=sys.stderr)
        sys.exit(2)
    """)

FAKE_DOCKER = FAKE_COMMON + textwrap.dedent("""\
    args = sys.argv[1:]
    if args[:1] == ["login"]:
        password = sys.stdin.read()
        log("docker", stdin=password)
        print("Login Succeeded")
    elif args[:2] == ["buildx", "version"]:
        log("docker")
        print(os.environ.get("FAKE_BUILDX_VERSION", "github.com/docker/buildx v0.33.0 0123456"))
    elif args[:2] == ["buildx", "create"]:
        config = args[args.index("--buildkitd-config") + 1] if "--buildkitd-config" in args else None
        log("docker", buildkitd_config=open(config).read() if config else None)
        print("agentbuild")
    elif args[:2] == ["buildx", "build"]:
        # What buildx would read: the file EXPERIMENTAL_BUILDKIT_SOURCE_POLICY names, now.
        policy = os.environ.get("EXPERIMENTAL_BUILDKIT_SOURCE_POLICY")
        # What buildx would read too: the Dockerfile --file names, the variables --secret names.
        dockerfile = args[args.index("--file") + 1] if "--file" in args else None
        secrets = [a.split(",env=", 1)[1] for a in args if a.startswith("id=") and ",env=" in a]
        log("docker", source_policy=open(policy).read() if policy else None,
            dockerfile=open(dockerfile).read() if dockerfile and os.path.isfile(dockerfile) else None,
            secret_env={name: os.environ.get(name) for name in secrets})
        if "--sbom=true" in args:
            # The local exporter: the rootfs and, at its root, BuildKit's attestations.
            if os.environ.get("FAKE_ATTEST_FAILS"):
                print("ERROR: failed to solve: sbom scanner")
                sys.exit(1)
            dest = args[args.index("--output") + 1].split("dest=", 1)[1]
            os.makedirs(dest, exist_ok=True)
            for name, kind in (("sbom.spdx.json", "https://spdx.dev/Document"),
                               ("provenance.json", "https://slsa.dev/provenance/v0.2")):
                with open(os.path.join(dest, name), "w") as f:
                    json.dump({"predicateType": kind}, f)
            sys.exit(0)
        if os.environ.get("FAKE_PUSH_CONFLICT_DIGEST"):
            print("ERROR: failed to push: tag invalid: The image tag 'x' already exists in the "
                  "'agentbuild-images' repository and cannot be overwritten because the "
                  "repository is immutable.")
            sys.exit(1)
        if os.environ.get("FAKE_BUILD_FAILS"):
            print("ERROR: failed to solve: process did not complete successfully")
            sys.exit(1)
        metadata = args[args.index("--metadata-file") + 1]
        with open(metadata, "w") as f:
            json.dump({"containerimage.digest": os.environ["FAKE_BUILD_DIGEST"]}, f)
        print("#1 DONE")
    elif args[:1] == ["run"]:
        log("docker")
        print("installing: amd64 OK")
    else:
        log("docker")
        print("fake docker: unexpected call", args, file=sys.stderr)
        sys.exit(2)
    """)

FAKE_UNAME = FAKE_COMMON + textwrap.dedent("""\
    log("uname")
    print(os.environ.get("FAKE_UNAME_M", "aarch64") if sys.argv[1:] == ["-m"] else "Linux")
    """)


def write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def real_python() -> str:
    """The python3 the buildspec will find on the harness PATH's real part (as on CodeBuild)."""
    found = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    assert found, "the harness needs a python3 in /usr/local/bin, /usr/bin or /bin"
    return found


# --------------------------------------------------------------------------- the traps

PYTHON_TRAP_FAMILIES = ("stdlib", "encodings", "sitecustomize", "usercustomize", "pth")


def plant_traps(context: Path, home: Path, markers: Path, python_traps: str | None = None) -> None:
    """Every trap; python_traps names the ONE Python family to plant (None: all of them).

    One family at a time matters when the isolation regresses: a shadowed `encodings` kills
    the interpreter at start-up, before sitecustomize, usercustomize or a .pth could run.
    """
    def planting(family: str) -> bool:
        return python_traps is None or python_traps == family

    def py_trap(name: str) -> str:
        # posix, not open(): shadowing `encodings` runs this before the builtins are complete.
        marker = str(markers / f"py-{name}")
        return f"import posix; posix.close(posix.open({marker!r}, posix.O_WRONLY | posix.O_CREAT, 0o644))\n"

    def sh_trap(name: str) -> str:
        return f"#!/bin/sh\necho ran > '{markers}/exec-{name}'\nexit 0\n"

    if planting("stdlib"):
        for module in STDLIB_TRAPS:
            (context / f"{module}.py").write_text(py_trap(module))
        for package in ("json", "collections", "importlib", "email", "logging"):
            (context / package).mkdir()
            (context / package / "__init__.py").write_text(py_trap(f"{package}-package"))
        (context / "evil.pth").write_text(py_trap("root-pth"))
    if planting("encodings"):
        (context / "encodings").mkdir()
        (context / "encodings" / "__init__.py").write_text(py_trap("encodings-package"))
    if planting("sitecustomize"):
        (context / "sitecustomize.py").write_text(py_trap("sitecustomize"))

    # PYTHONUSERBASE points here: a user site-packages with usercustomize.py and a .pth.
    version = subprocess.run(
        [real_python(), "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True).stdout.strip()
    site = context / ".local" / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    if planting("usercustomize"):
        (site / "usercustomize.py").write_text(py_trap("user-usercustomize"))
    if planting("pth"):
        (site / "evil.pth").write_text(py_trap("user-pth"))

    for tool in TOOL_TRAPS:
        write_executable(context / tool, sh_trap(tool))
    for where, directory in (("context", context), ("home", home)):
        for rc in RC_TRAPS:
            (directory / rc).write_text(f"echo sourced > '{markers}/rc-{where}{rc}'\n")
    for directory in (context, home):
        (directory / ".docker").mkdir(exist_ok=True)
        (directory / ".docker" / "config.json").write_text(json.dumps({
            "credsStore": "evil",
            "proxies": {"default": {"httpProxy": "http://evil.example:3128"}},
        }))
    (context / ".python-version").write_text("system\n")
    (context / "Dockerfile").write_text(
        "# syntax=evil.example/frontend:latest\nFROM public.ecr.aws/docker/library/alpine:3\n"
        "RUN echo built\n")
    (context / "sub").mkdir()
    (context / "sub" / "app.Dockerfile").write_text("FROM scratch\n")
    (context / "outside.Dockerfile").symlink_to("/etc/hostname")


# --------------------------------------------------------------------------- running it

class Run:
    def __init__(self, proc: subprocess.CompletedProcess, log: Path, context: Path,
                 markers: Path) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr
        self.context = context
        self.markers = markers
        self.calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        self.exports = dict(re.findall(r"^__EXPORT__ (\w+)=(.*)$", proc.stdout, re.M))
        works = re.findall(r"^__WORK__ (.*)$", proc.stdout, re.M)
        self.work = works[-1] if works else ""

    def docker(self, *prefix: str) -> list[dict]:
        """docker calls by argv prefix; `buildx build` means the image's build (the
        attestations' build, with --sbom=true, is `attestations()`)."""
        return [c for c in self.calls if c["tool"] == "docker" and tuple(c["argv"][:len(prefix)]) == prefix
                and not (prefix == ("buildx", "build") and "--sbom=true" in c["argv"])]

    def attestations(self) -> list[dict]:
        return [c for c in self.calls if c["tool"] == "docker" and "--sbom=true" in c["argv"]]

    def aws(self, *prefix: str) -> list[dict]:
        return [c for c in self.calls if c["tool"] == "aws" and tuple(c["argv"][:len(prefix)]) == prefix]

    def build_argv(self) -> list[str]:
        builds = self.docker("buildx", "build")
        assert len(builds) == 1, self.output
        return builds[0]["argv"]

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Run(rc={self.returncode})\n--- output ---\n{self.output}\n--- calls ---\n" + \
            "\n".join(json.dumps(c["argv"]) for c in self.calls)


def harness_script(buildspec: dict) -> str:
    """All commands of all phases, in order, for one bash; then the exported variables."""
    lines = [
        # Harness bookkeeping only (a builtin): report the work directory however the shell ends.
        "trap 'printf \"__WORK__ %s\\n\" \"${AGENTBUILD_WORK-}\"' EXIT",
    ]
    for phase in PHASES:
        for command in (buildspec.get("phases", {}).get(phase) or {}).get("commands") or []:
            lines += [command.rstrip("\n"),
                      "agentbuild_harness_rc=$?",
                      'if [ "$agentbuild_harness_rc" -ne 0 ]; then exit "$agentbuild_harness_rc"; fi']
    for name in buildspec["env"]["exported-variables"]:
        lines.append(f"printf '__EXPORT__ %s=%s\\n' {name} \"${{{name}-}}\"")
    return "\n".join(lines) + "\n"


@pytest.fixture
def buildspec() -> dict:
    return yaml.safe_load(BUILDSPEC.read_text())


@pytest.fixture
def run_buildspec(tmp_path: Path, buildspec: dict):
    fakebin = tmp_path / "fakebin"
    shebang = f"#!{sys.executable} -I\n"
    write_executable(fakebin / "aws", shebang + FAKE_AWS)
    write_executable(fakebin / "docker", shebang + FAKE_DOCKER)
    write_executable(fakebin / "uname", shebang + FAKE_UNAME)
    script = tmp_path / "harness" / "buildspec.sh"
    script.parent.mkdir()
    script.write_text(harness_script(buildspec))
    works: list[str] = []

    def run(build_args: dict | str | None = None, *, python_traps: str | None = None,
            prepare: Callable[[Path], None] | None = None, **overrides: str | None) -> Run:
        """One build in a fresh, trapped context; overrides set (or, with None, unset) env.

        prepare(context) runs after the traps are planted: more files for one test.
        """
        top = tmp_path / f"run{len(works)}-{len(list(tmp_path.glob('run*')))}"
        context = top / "src"          # $CODEBUILD_SRC_DIR
        home = top / "home"
        markers = top / "markers"      # outside the context: where every trap would write
        log = top / "calls.jsonl"
        for directory in (context, home, markers):
            directory.mkdir(parents=True)
        plant_traps(context, home, markers, python_traps)
        if prepare is not None:
            prepare(context)
        if build_args is None:
            build_args = {k: v.format(markers=markers) for k, v in HOSTILE_VALUES.items()}
        env = {
            # An empty and a "." entry: the current directory, ahead of the real tools.
            "PATH": f"{fakebin}::.:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "CODEBUILD_SRC_DIR": str(context),
            "PYTHONPATH": str(context),
            "PYTHONUSERBASE": str(context / ".local"),
            "AGENTBUILD_BUILD_ID": "nexus-ai-sales-assistant-0001",
            "AGENTBUILD_IMAGE_REPOSITORY": REPO,
            "AGENTBUILD_IMAGE_TAG": TAG,
            "AGENTBUILD_BUCKET": BUCKET,
            "AGENTBUILD_DOCKERFILE": "Dockerfile",
            "AGENTBUILD_PLATFORM": "linux/arm64",
            "AGENTBUILD_BUILD_ARGS": build_args if isinstance(build_args, str) else json.dumps(build_args),
            "AGENTBUILD_FORCE": "false",
            "AGENTBUILD_CACHE_TAG": CACHE_TAG,
            "AGENTBUILD_BUILDKIT_IMAGE": BUILDKIT,
            "AGENTBUILD_BINFMT_IMAGE": BINFMT,
            "AGENTBUILD_CACHE_REPOSITORY": CACHE_REPO,
            "AGENTBUILD_DOCKERFILE_FRONTEND": FRONTEND,
            "FAKE_LOG": str(log),
            "FAKE_BUILD_DIGEST": BUILT,
        }
        env.update(overrides)
        env = {k: v for k, v in env.items() if v is not None}
        proc = subprocess.run(["/bin/bash", str(script)], cwd=context, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        result = Run(proc, log, context, markers)
        if result.work:
            works.append(result.work)
        return result

    yield run
    for work in works:
        if work.startswith("/tmp/agentbuild."):
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- assertions

def assert_context_untouched(run: Run) -> None:
    """No trap fired, and no tool ran from inside the context or with its docker config."""
    fired = sorted(p.name for p in run.markers.iterdir())
    assert fired == [], f"traps fired: {fired}\n{run!r}"
    context = os.path.realpath(run.context)
    assert run.work.startswith("/tmp/agentbuild."), run
    for call in run.calls:
        cwd = os.path.realpath(call["cwd"])
        assert cwd == os.path.realpath(run.work), (call, run)
        assert not (cwd + "/").startswith(context + "/"), (call, run)
        assert all(entry.startswith("/") for entry in call["path"].split(":")), call["path"]
        if call["tool"] == "docker":
            assert call["docker_config"] == f"{run.work}/docker", call


def expected_build_argv(run: Run, *, platform="linux/arm64", tag=TAG, force=False,
                        dockerfile="Dockerfile", build_args: dict | None = None) -> list[str]:
    if build_args is None:
        build_args = {k: v.format(markers=run.markers) for k, v in HOSTILE_VALUES.items()}
    context = os.path.realpath(run.context)
    cache = f"{CACHE_REPO}:{CACHE_TAG}"
    argv = ["buildx", "build", "--builder", "agentbuild", "--platform", platform,
            "--file", f"{context}/{dockerfile}", "--tag", f"{REPO}:{tag}"]
    argv += ["--pull", "--no-cache"] if force else ["--cache-from", f"type=registry,ref={cache}"]
    argv += ["--cache-to",
             f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true",
             "--provenance=false", "--metadata-file", f"{run.work}/buildx-metadata.json", "--push"]
    for key in sorted(build_args):
        argv += ["--build-arg", f"{key}={build_args[key]}"]
    argv += ["--build-arg", f"BUILDKIT_SYNTAX={FRONTEND}", context]
    return argv


# --------------------------------------------------------------------------- the tests

def test_new_tag_builds_with_exact_argv_and_exports(run_buildspec) -> None:
    run = run_buildspec()
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    assert run.build_argv() == expected_build_argv(run)
    assert run.exports == {"IMAGE_DIGEST": BUILT, "IMAGE_URI": f"{REPO}@{BUILT}", "ATTESTATIONS_URI": ATTESTATIONS}, run
    # Logged in to the registry (password on stdin, never in argv), looked the tag up once.
    [login] = run.docker("login")
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", REGISTRY]
    assert login["stdin"].strip() == "fake-ecr-password"
    [describe] = run.aws("ecr", "describe-images")
    assert describe["argv"][describe["argv"].index("--image-ids") + 1] == f"imageTag={TAG}"
    assert describe["argv"][describe["argv"].index("--repository-name") + 1] == "agentbuild-images"
    assert run.docker("run") == [], "arm64 is native: no binfmt"


def test_builder_runs_pinned_buildkit_and_allows_only_our_frontend(run_buildspec) -> None:
    run = run_buildspec()
    assert_context_untouched(run)
    assert run.returncode == 0, run
    [create] = run.docker("buildx", "create")
    argv = create["argv"]
    assert argv[argv.index("--driver") + 1] == "docker-container"
    assert argv[argv.index("--driver-opt") + 1] == f"image={BUILDKIT}"
    assert argv[argv.index("--buildkitd-config") + 1] == f"{run.work}/buildkitd.toml"
    assert create["buildkitd_config"] == (
        '[frontend."gateway.v0"]\n  enabled = true\n  allowedRepositories = ["docker/dockerfile"]\n')
    # Our frontend, last among the build args, whatever the Dockerfile's `# syntax=` line says.
    build = run.build_argv()
    syntax = [build[i + 1] for i, a in enumerate(build) if a == "--build-arg"
              and build[i + 1].upper().startswith("BUILDKIT_SYNTAX=")]
    assert syntax == [f"BUILDKIT_SYNTAX={FRONTEND}"]
    assert "evil.example" not in " ".join(build)


def test_build_args_are_data_not_shell(run_buildspec) -> None:
    run = run_buildspec()
    assert_context_untouched(run)  # includes: no pwned-* marker
    assert run.returncode == 0, run
    build = run.build_argv()
    markers = run.markers
    assert f"SUBST=$(touch {markers}/pwned-subst)" in build
    assert f'QUOTE="; touch {markers}/pwned-quote; echo "' in build
    assert f"TICKS=`touch {markers}/pwned-ticks`" in build
    assert "SPACES=a b\tc\nd" in build


@pytest.mark.parametrize("name", [
    "BUILDKIT_SYNTAX", "buildkit_syntax", "BuildKit_Cache_Mount_NS", "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_SANDBOX_HOSTNAME", "HTTP_PROXY", "http_proxy", "Https_Proxy", "FTP_PROXY",
    "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
])
def test_reserved_build_args_are_refused(run_buildspec, name: str) -> None:
    run = run_buildspec(build_args={"PYTHON_VERSION": "3.12", name: "evil.example/frontend"})
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert run.docker("buildx", "build") == [], run
    assert "reserved" in run.output and repr(name) in run.output, run
    assert "IMAGE_DIGEST" not in run.exports


def test_forced_build_of_an_existing_tag_still_builds_fresh(run_buildspec) -> None:
    run = run_buildspec(AGENTBUILD_FORCE="true", AGENTBUILD_IMAGE_TAG=FORCED_TAG,
                        FAKE_EXISTING_DIGEST=EXISTING)
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    assert run.aws("ecr", "describe-images") == [], "a forced build never looks for a reusable tag"
    build = run.build_argv()
    assert build == expected_build_argv(run, tag=FORCED_TAG, force=True)
    assert "--pull" in build and "--no-cache" in build and "--cache-from" not in build
    assert "--cache-to" in build  # the refreshed layers still feed later unforced builds
    assert run.exports == {"IMAGE_DIGEST": BUILT, "IMAGE_URI": f"{REPO}@{BUILT}",
                           "ATTESTATIONS_URI": f"s3://{BUCKET}/attestations/{FORCED_TAG}/"}


def test_unforced_build_of_an_existing_tag_reuses_its_digest(run_buildspec) -> None:
    run = run_buildspec(FAKE_EXISTING_DIGEST=EXISTING)
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    assert run.docker("buildx") == [] and run.docker("run") == [], run
    assert run.exports == {"IMAGE_DIGEST": EXISTING, "IMAGE_URI": f"{REPO}@{EXISTING}",
                           "ATTESTATIONS_URI": ""}


def test_sbom_and_slsa_provenance_are_made_beside_the_image_never_in_it(run_buildspec) -> None:
    run = run_buildspec()
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    # The pushed image stays one image manifest: no attestation on the push.
    build = run.build_argv()
    assert "--provenance=false" in build and "--push" in build and "--sbom=true" not in build
    [attest] = run.attestations()
    argv = attest["argv"]
    assert "--sbom=true" in argv and "--provenance=mode=max" in argv, argv
    assert argv[argv.index("--output") + 1] == f"type=local,dest={run.work}/attestations"
    assert "--push" not in argv and "--tag" not in argv and not any(a.startswith("--cache-to") for a in argv)
    assert argv[-1] == build[-1] and argv[argv.index("--file") + 1] == build[build.index("--file") + 1]
    puts = {c["argv"][c["argv"].index("--key") + 1]: json.loads(c["body"])
            for c in run.aws("s3api", "put-object") if "body" in c}
    assert sorted(puts) == [f"attestations/{TAG}/provenance.json", f"attestations/{TAG}/sbom.spdx.json"]
    assert run.exports["ATTESTATIONS_URI"] == ATTESTATIONS


def test_attestations_that_fail_leave_the_pushed_image_and_say_so(run_buildspec) -> None:
    run = run_buildspec(FAKE_ATTEST_FAILS="1")
    assert run.returncode == 0, run
    assert run.exports == {"IMAGE_DIGEST": BUILT, "IMAGE_URI": f"{REPO}@{BUILT}", "ATTESTATIONS_URI": ""}
    assert "attestations were not made" in run.output
    assert run.aws("s3api", "put-object") == []


def test_amd64_registers_binfmt_before_the_builder_starts(run_buildspec) -> None:
    run = run_buildspec(AGENTBUILD_PLATFORM="linux/amd64",
                        AGENTBUILD_CACHE_TAG="nexus-ai.sales-assistant.amd64")
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    sequence = [c["argv"][:2] for c in run.calls if c["tool"] == "docker" and c["argv"][0] != "login"]
    assert sequence == [["buildx", "version"], ["run", "--privileged"], ["buildx", "create"],
                        ["buildx", "build"], ["buildx", "build"]], run
    [binfmt] = run.docker("run")
    assert binfmt["argv"] == ["run", "--privileged", "--rm", BINFMT, "--install", "amd64"]
    build = run.build_argv()
    assert build[build.index("--platform") + 1] == "linux/amd64"
    assert f"type=registry,ref={CACHE_REPO}:nexus-ai.sales-assistant.amd64" in build


def test_a_concurrent_push_of_the_same_tag_takes_the_repository_digest(run_buildspec) -> None:
    run = run_buildspec(FAKE_PUSH_CONFLICT_DIGEST=RACED)
    assert_context_untouched(run)  # first: a fired trap explains any failure below
    assert run.returncode == 0, run
    assert len(run.aws("ecr", "describe-images")) == 2  # not found first, then the racer's
    assert run.exports == {"IMAGE_DIGEST": RACED, "IMAGE_URI": f"{REPO}@{RACED}", "ATTESTATIONS_URI": ATTESTATIONS}


def test_a_failed_build_fails_and_exports_nothing(run_buildspec) -> None:
    run = run_buildspec(FAKE_BUILD_FAILS="1")
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert "IMAGE_DIGEST" not in run.exports


def test_a_dockerfile_in_a_subdirectory_is_passed_by_absolute_path(run_buildspec) -> None:
    run = run_buildspec(AGENTBUILD_DOCKERFILE="sub/app.Dockerfile")
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert run.build_argv() == expected_build_argv(run, dockerfile="sub/app.Dockerfile")


@pytest.mark.parametrize("overrides, message", [
    ({"AGENTBUILD_IMAGE_REPOSITORY": "docker.io/evil/images"}, "AGENTBUILD_IMAGE_REPOSITORY"),
    ({"AGENTBUILD_CACHE_REPOSITORY": "docker.io/evil/cache"}, "AGENTBUILD_CACHE_REPOSITORY"),
    ({"AGENTBUILD_CACHE_REPOSITORY": None}, "AGENTBUILD_CACHE_REPOSITORY"),
    ({"AGENTBUILD_CACHE_REPOSITORY": REPO}, "must not be the image repository"),
    ({"AGENTBUILD_IMAGE_TAG": "x;id"}, "AGENTBUILD_IMAGE_TAG"),
    ({"AGENTBUILD_CACHE_TAG": "a b"}, "AGENTBUILD_CACHE_TAG"),
    ({"AGENTBUILD_CACHE_TAG": "-leading-dash"}, "AGENTBUILD_CACHE_TAG"),
    ({"AGENTBUILD_CACHE_TAG": "a" * 129}, "AGENTBUILD_CACHE_TAG"),
    ({"AGENTBUILD_CACHE_TAG": None}, "AGENTBUILD_CACHE_TAG"),
    ({"AGENTBUILD_FORCE": "yes"}, "AGENTBUILD_FORCE"),
    ({"AGENTBUILD_FORCE": None}, "AGENTBUILD_FORCE"),
    ({"AGENTBUILD_PLATFORM": "linux/riscv64"}, "AGENTBUILD_PLATFORM"),
    ({"AGENTBUILD_DOCKERFILE": "../Dockerfile"}, "AGENTBUILD_DOCKERFILE"),
    ({"AGENTBUILD_DOCKERFILE": "/etc/passwd"}, "AGENTBUILD_DOCKERFILE"),
    ({"AGENTBUILD_DOCKERFILE_FRONTEND": "docker/dockerfile:1"}, "AGENTBUILD_DOCKERFILE_FRONTEND"),
    ({"AGENTBUILD_DOCKERFILE_FRONTEND": None}, "AGENTBUILD_DOCKERFILE_FRONTEND"),
    ({"AGENTBUILD_BUILDKIT_IMAGE": "moby/buildkit:buildx-stable-1"}, "AGENTBUILD_BUILDKIT_IMAGE"),
    ({"AGENTBUILD_BINFMT_IMAGE": "tonistiigi/binfmt:latest"}, "AGENTBUILD_BINFMT_IMAGE"),
])
def test_invalid_project_or_build_values_stop_before_any_tool(run_buildspec, overrides, message) -> None:
    run = run_buildspec(**overrides)
    assert run.returncode != 0, run
    assert message in run.stderr, run
    assert run.calls == [], "validation comes before login, lookup and build"
    assert "IMAGE_DIGEST" not in run.exports
    assert not [p.name for p in run.markers.iterdir()]


@pytest.mark.parametrize("build_args, message", [
    ('{"A": "1", "A": "2"}', "duplicate key 'A'"),
    ("[1, 2]", "JSON object"),
    ("{not json", "not valid JSON"),
    ({f"A{i}": "x" for i in range(33)}, "at most 32"),
    ({"A": 1}, "must be a string"),
    ({"1A": "x"}, "the name must match"),
    ({"A-B": "x"}, "the name must match"),
    ({"A": "x" * 4097}, "over 4 KiB"),
    ({"A": "é" * 2049}, "over 4 KiB"),  # bytes, not characters
    ({f"A{i}": "x" * 4000 for i in range(9)}, "over 32 KiB"),
])
def test_bad_build_args_are_refused_before_docker(run_buildspec, build_args, message) -> None:
    run = run_buildspec(build_args=build_args)
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert message in run.output, run
    assert run.docker("buildx", "build") == [], run


def test_a_dockerfile_symlink_out_of_the_context_is_refused(run_buildspec) -> None:
    run = run_buildspec(AGENTBUILD_DOCKERFILE="outside.Dockerfile")
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert "not a regular file inside the build context" in run.output, run
    assert run.docker("buildx", "build") == [], run


def test_limits_at_the_edge_are_accepted(run_buildspec) -> None:
    args = {f"A{i:02}": "x" * 4096 for i in range(8)}  # 8 x 4 KiB = exactly 32 KiB
    run = run_buildspec(build_args=args)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert run.build_argv() == expected_build_argv(run, build_args=args)


def test_the_first_command_leaves_the_context_with_builtins_only(buildspec: dict) -> None:
    """Before the `cd`, only builtins and `mktemp` (looked up on the cleaned PATH) may run."""
    first = buildspec["phases"]["pre_build"]["commands"][0]
    before_cd = first.split('cd "$AGENTBUILD_WORK"')[0]
    assert 'export PATH="$agentbuild_path"' in before_cd
    words = set(re.findall(r"^\s*([a-z][\w-]*)", before_cd, re.M))
    allowed = {"set", "unset", "agentbuild_path", "while", "agentbuild_entry", "agentbuild_rest",
               "if", "then", "fi", "done", "export", "hash", "umask", "cd", "mktemp"}
    assert words <= allowed, words - allowed
    for command in [c for p in PHASES for c in (buildspec["phases"].get(p) or {}).get("commands", [])][1:]:
        body = [line for line in command.splitlines() if line.strip() and not line.strip().startswith("#")]
        assert body[:2] == ["set -euo pipefail", 'cd "${AGENTBUILD_WORK:?}"'], body[:2]
    assert 'cd "$CODEBUILD_SRC_DIR"' not in BUILDSPEC.read_text()
    assert "python3 -I " in BUILDSPEC.read_text()
    assert not re.search(r"python3 (?!-I )", BUILDSPEC.read_text().split("version: 0.2", 1)[1])


@pytest.mark.parametrize("family", PYTHON_TRAP_FAMILIES)
def test_each_python_trap_alone_stays_inert(run_buildspec, family: str) -> None:
    """PYTHONPATH and PYTHONUSERBASE point into the context; only -I keeps Python out of it."""
    run = run_buildspec(python_traps=family)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert run.exports["IMAGE_DIGEST"] == BUILT


# --------------------------------------------------------------------------- the source policy

# The JSON keys and enum names buildx accepts: it decodes the file with encoding/json into
# moby/buildkit sourcepolicy/pb (json tags "rules", "action", "selector", "identifier",
# "match_type"; enums by name through sourcepolicy/pb/json.go). An unknown key would be ignored.
POLICY_KEYS = {"version", "rules"}
RULE_KEYS = {"action", "selector"}
SELECTOR_KEYS = {"identifier", "match_type"}
MIRROR = f"{REGISTRY}/docker-hub"


def source_policy(run: Run) -> dict:
    """The policy file `docker buildx build` was pointed at, as it read it; nobody else saw it."""
    [build] = run.docker("buildx", "build")
    assert build["source_policy_env"] == f"{run.work}/source-policy.json", build
    # The attestations' build (the same build again, from the cache) runs under the same policy.
    others = [c for c in run.calls if c is not build and c["source_policy_env"] is not None]
    assert others == run.attestations(), others
    assert all(c["source_policy"] == build["source_policy"] for c in others)
    policy = json.loads(build["source_policy"])
    assert set(policy) <= POLICY_KEYS and policy["version"] == 1
    for rule in policy["rules"]:
        assert set(rule) <= RULE_KEYS and set(rule["selector"]) <= SELECTOR_KEYS, rule
        assert rule["action"] in ("ALLOW", "DENY"), rule
        assert rule["selector"]["match_type"] in ("EXACT", "REGEX"), rule
    return policy


def allowed(policy: dict, identifier: str) -> bool:
    """moby/buildkit sourcepolicy/engine.go evaluatePolicy + matcher.go: an identical identifier
    always matches; else EXACT does not, REGEX is an unanchored search. For ALLOW and DENY the
    LAST matching rule wins; nothing matching allows."""
    deny = False
    for rule in policy["rules"]:
        selector = rule["selector"]
        matched = selector["identifier"] == identifier or (
            selector["match_type"] == "REGEX" and re.search(selector["identifier"], identifier))
        if matched:
            deny = rule["action"] == "DENY"
    return not deny


OTHER_DIGEST = "@sha256:" + "e" * 64
DENIED = [
    # Another agent's image, by digest or tag, and another agent's registry cache.
    f"docker-image://{REPO}@sha256:{'4' * 64}",
    f"docker-image://{REPO}:other-agent-0123456789abcdef",
    f"docker-image://{CACHE_REPO}:nexus-ai.other-agent.arm64",
    f"docker-image://{CACHE_REPO}@sha256:{'5' * 64}",
    # Anything behind a pull-through cache rule, whatever the prefix.
    f"docker-image://{MIRROR}/private-org/secret-image:latest",
    f"docker-image://{REGISTRY}/ghcr/private-org/secret-image@sha256:{'6' * 64}",
    f"docker-image://{REGISTRY}/any-prefix/library/alpine:3",
    # The same registry written otherwise: upper case, a port, another region or endpoint.
    f"docker-image://{REGISTRY.upper()}/agentbuild-images:other-agent-0123456789abcdef",
    f"docker-image://{REGISTRY}:443/agentbuild-images:x",
    f"docker-image://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/x:1",
    f"docker-image://{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com/x:1",
    f"docker-image://{ACCOUNT}.dkr-ecr.eu-west-1.on.aws/x:1",
    # A pinned repository at another digest or tag is not the pinned image.
    f"docker-image://{MIRROR}/docker/dockerfile:1.0.0{OTHER_DIGEST}",
    f"docker-image://{MIRROR}/docker/dockerfile:latest",
]
ALLOWED = [
    "docker-image://docker.io/library/alpine:3",
    "docker-image://public.ecr.aws/docker/library/python:3.12-slim",
    "docker-image://ghcr.io/org/image@sha256:" + "7" * 64,
    "docker-image://210987654321.dkr.ecr.eu-west-1.amazonaws.com/theirs:1",  # we hold no login there
    "docker-image://docker.io/docker/dockerfile:1.0.0@sha256:" + "d" * 64,
]


def test_the_source_policy_denies_the_account_registry_to_the_dockerfile(run_buildspec) -> None:
    run = run_buildspec()
    assert_context_untouched(run)
    assert run.returncode == 0, run
    policy = source_policy(run)
    for identifier in DENIED:
        assert not allowed(policy, identifier), identifier
    for identifier in ALLOWED:
        assert allowed(policy, identifier), identifier
    # Denials first: the last matching rule wins, so a later ALLOW is the only way through.
    actions = [r["action"] for r in policy["rules"]]
    assert actions == sorted(actions, key=lambda a: a != "DENY"), actions
    assert run.build_argv() == expected_build_argv(run)  # the policy travels in env, not argv


def test_the_source_policy_allows_exactly_the_mirrored_pinned_images(run_buildspec) -> None:
    frontend = f"{MIRROR}/docker/dockerfile:1.0.0@sha256:" + "d" * 64
    buildkit = f"{MIRROR}/moby/buildkit:v0.0.0@sha256:" + "b" * 64
    binfmt = f"{MIRROR}/tonistiigi/binfmt@sha256:" + "c" * 64
    run = run_buildspec(AGENTBUILD_DOCKERFILE_FRONTEND=frontend, AGENTBUILD_BUILDKIT_IMAGE=buildkit,
                        AGENTBUILD_BINFMT_IMAGE=binfmt)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    policy = source_policy(run)
    # The frontend is an image source too (frontend/gateway/gateway.go): as pinned, and the same
    # digest without its tag.
    mirrored = [f"docker-image://{frontend}", f"docker-image://{MIRROR}/docker/dockerfile@sha256:" + "d" * 64,
                f"docker-image://{buildkit}", f"docker-image://{MIRROR}/moby/buildkit@sha256:" + "b" * 64,
                f"docker-image://{binfmt}"]
    for identifier in mirrored:
        assert allowed(policy, identifier), identifier
    assert sorted(r["selector"]["identifier"] for r in policy["rules"] if r["action"] == "ALLOW") == sorted(mirrored)
    assert all(r["selector"]["match_type"] == "EXACT" for r in policy["rules"] if r["action"] == "ALLOW")
    for identifier in DENIED:
        assert not allowed(policy, identifier), identifier


def test_a_cache_in_another_account_is_denied_too(run_buildspec) -> None:
    other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/agentbuild-cache"
    run = run_buildspec(AGENTBUILD_CACHE_REPOSITORY=other)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    policy = source_policy(run)
    assert not allowed(policy, f"docker-image://{other}:nexus-ai.other-agent.arm64")
    assert not allowed(policy, f"docker-image://{REPO}:x")


def test_an_inherited_source_policy_never_reaches_a_tool(run_buildspec, tmp_path: Path) -> None:
    """Only `docker buildx build` gets the variable, and only with our file."""
    lax = tmp_path / "lax.json"
    lax.write_text('{"rules": []}')
    run = run_buildspec(EXPERIMENTAL_BUILDKIT_SOURCE_POLICY=str(lax))
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert not allowed(source_policy(run), f"docker-image://{REPO}:x")


@pytest.mark.parametrize("version", [
    "github.com/docker/buildx v0.12.1 30feaa1",
    "github.com/docker/buildx 0.11.0 687feca",
    "github.com/docker/buildx v0.31.1-desktop.2 abcdef0",
    "github.com/docker/buildx v1.0.0 abcdef0",
])
def test_a_buildx_that_applies_source_policies_is_accepted(run_buildspec, version: str) -> None:
    run = run_buildspec(FAKE_BUILDX_VERSION=version)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    source_policy(run)


@pytest.mark.parametrize("version", [
    "github.com/docker/buildx v0.10.5 86bdced", "github.com/docker/buildx v0.9.1", "", "buildx dev",
])
def test_a_buildx_that_would_ignore_the_source_policy_is_refused(run_buildspec, version: str) -> None:
    run = run_buildspec(FAKE_BUILDX_VERSION=version)
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert "docker buildx 0.11 or later is required" in run.stderr, run
    assert run.docker("buildx", "create") == [] and run.docker("buildx", "build") == [], run


# --------------------------------------------------------------------------- files next to the Dockerfile

SECRET = "secret-credentials-path-0123"


def symlink(target: str | Path):
    return lambda path: path.symlink_to(target)


def regular(path: Path) -> None:
    path.write_text("package docker\ndefault allow := true\n")


def directory(path: Path) -> None:
    path.mkdir()


def fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("dockerfile, planted, make", [
    # buildx reads <Dockerfile>.rego on the host (0.32+: through symlinks): never accepted.
    ("Dockerfile", "Dockerfile.rego", symlink("/proc/self/environ")),
    ("Dockerfile", "Dockerfile.rego", symlink("sub/app.Dockerfile")),   # inside, still a symlink
    ("Dockerfile", "Dockerfile.rego", symlink("/nonexistent")),         # dangling
    ("Dockerfile", "Dockerfile.rego", regular),                         # a caller's policy code
    ("Dockerfile", "Dockerfile.rego", directory),
    ("sub/app.Dockerfile", "sub/app.Dockerfile.rego", symlink("/proc/self/environ")),
    # The Dockerfile is a symlink: buildx is given its target, so the target's neighbours count.
    ("link.Dockerfile", "sub/app.Dockerfile.rego", symlink("/proc/self/environ")),
    # <Dockerfile>.dockerignore: a regular file or nothing.
    ("Dockerfile", "Dockerfile.dockerignore", symlink("/proc/self/environ")),
    ("Dockerfile", "Dockerfile.dockerignore", symlink(".python-version")),
    ("Dockerfile", "Dockerfile.dockerignore", directory),
    ("Dockerfile", "Dockerfile.dockerignore", fifo),
    ("sub/app.Dockerfile", "sub/app.Dockerfile.dockerignore", symlink("/etc/hostname")),
])
def test_files_buildx_would_read_next_to_the_dockerfile_are_refused(
        run_buildspec, dockerfile: str, planted: str, make) -> None:
    def prepare(context: Path) -> None:
        (context / "link.Dockerfile").symlink_to("sub/app.Dockerfile")
        make(context / planted)

    run = run_buildspec(AGENTBUILD_DOCKERFILE=dockerfile, prepare=prepare,
                        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=f"/v2/credentials/{SECRET}")
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert repr(planted) in run.output, run
    assert run.docker("buildx", "build") == [], run
    assert SECRET not in run.output
    assert "IMAGE_DIGEST" not in run.exports


def test_regular_dockerignore_files_are_accepted(run_buildspec) -> None:
    def prepare(context: Path) -> None:
        (context / ".dockerignore").write_text("*.md\n")
        (context / "Dockerfile.dockerignore").write_text("*.md\n")
        (context / "Other.rego").write_text("package other\n")  # not named after the Dockerfile

    run = run_buildspec(prepare=prepare)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert run.build_argv() == expected_build_argv(run)


# --------------------------------------------------------------------------- build secrets

SECRET_VALUE = "pypi-token-VALUE-0123456789"
SECRET_IDS = '["PYPI_TOKEN", "NPM"]'
SECRET_ENV = {"AGENTBUILD_BUILD_SECRETS": SECRET_IDS,
              "AGENTBUILD_SECRET_PYPI_TOKEN": SECRET_VALUE,
              "AGENTBUILD_SECRET_NPM": SECRET_VALUE + "-npm"}
MOUNTING_DOCKERFILE = ("FROM public.ecr.aws/docker/library/python:3.13-slim\n"
                       "RUN --mount=type=secret,id=PYPI_TOKEN \\\n"
                       "    PIP_INDEX_URL=\"https://x:$(cat /run/secrets/PYPI_TOKEN)@pypi.example/simple\" pip install x\n")


def test_build_secrets_reach_a_secret_mount_and_nothing_else(run_buildspec) -> None:
    run = run_buildspec(prepare=lambda c: (c / "Dockerfile").write_text(MOUNTING_DOCKERFILE),
                        **SECRET_ENV)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    [build] = run.docker("buildx", "build")
    argv = build["argv"]
    # buildx is told where each value is, by name; it reads the variable itself.
    expected = expected_build_argv(run)
    at = expected.index("--build-arg")
    expected[at:at] = ["--secret", "id=PYPI_TOKEN,env=AGENTBUILD_SECRET_PYPI_TOKEN",
                       "--secret", "id=NPM,env=AGENTBUILD_SECRET_NPM"]  # in the list's order
    assert argv == expected
    assert build["secret_env"] == {"AGENTBUILD_SECRET_NPM": SECRET_VALUE + "-npm",
                                   "AGENTBUILD_SECRET_PYPI_TOKEN": SECRET_VALUE}
    # The step that uses it mounts it by id (the Dockerfile buildx was given).
    assert "RUN --mount=type=secret,id=PYPI_TOKEN" in build["dockerfile"]
    # The value is in no argv (no --build-arg, no --opt), no log line, no exported variable.
    for call in run.calls:
        assert not any(SECRET_VALUE in a for a in call["argv"]), call
    build_args = [argv[i + 1] for i, a in enumerate(argv) if a == "--build-arg"]
    assert not any(SECRET_VALUE in a or "PYPI_TOKEN" in a for a in build_args), build_args
    assert SECRET_VALUE not in run.output
    assert all(SECRET_VALUE not in v for v in run.exports.values())


@pytest.mark.parametrize("ids, missing, message", [
    ('["PYPI_TOKEN"]', "AGENTBUILD_SECRET_PYPI_TOKEN", "AGENTBUILD_SECRET_PYPI_TOKEN is not set"),
    ('["A-B"]', None, "the id must match"),
    ('["A", "A"]', None, "distinct secret ids"),
    ('{"A": "x"}', None, "a JSON list"),
    ("[1]", None, "a JSON list"),
    ("not json", None, "not valid JSON"),
])
def test_build_secret_ids_are_checked_before_the_build(run_buildspec, ids, missing, message) -> None:
    env = dict(SECRET_ENV, AGENTBUILD_BUILD_SECRETS=ids)
    if missing:
        env[missing] = None
    run = run_buildspec(**env)
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert message in run.output, run
    assert run.docker("buildx", "build") == [], run


# --------------------------------------------------------------------------- agentbuild's Dockerfile

OWN_REQUIREMENTS_DOCKERFILE = """\
# agentbuild-python-dockerfile-v1: agentbuild's Dockerfile for a Python agent whose build
# context has none. Written by agentbuild's buildspec, never taken from the context.
FROM ghcr.io/astral-sh/uv:python3.13-bookworm-slim AS deps
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never \\
    UV_PROJECT_ENVIRONMENT=/opt/venv VIRTUAL_ENV=/opt/venv
WORKDIR /app
COPY requirements.txt /opt/agentbuild/requirements.txt
RUN --mount=type=secret,id=PYPI_TOKEN,env=PYPI_TOKEN --mount=type=secret,id=NPM,env=NPM uv venv /opt/venv && uv pip install --only-binary :all: -r /opt/agentbuild/requirements.txt
COPY . /app
RUN python -m compileall -q -x '/\\.' /app

FROM python:3.13-slim-bookworm
RUN useradd --create-home --uid 1000 bedrock_agentcore
COPY --from=deps /opt/venv /opt/venv
COPY --from=deps /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DOCKER_CONTAINER=1
USER 1000
EXPOSE 8080
CMD ["opentelemetry-instrument", "python", "-m", "main"]
"""


def python_project(*, requirements: str | None = "strands-agents\naws-opentelemetry-distro>=0.10.1\n",
                   entry: str = "main.py", lock: bool = False, python_version: str | None = None):
    def prepare(context: Path) -> None:
        (context / "Dockerfile").unlink()
        (context / entry).parent.mkdir(parents=True, exist_ok=True)
        (context / entry).write_text("print('agent')\n")
        if requirements is not None:
            (context / "requirements.txt").write_text(requirements)
        if lock:
            (context / "pyproject.toml").write_text('[project]\nname = "agent"\nversion = "0"\n')
            (context / "uv.lock").write_text('version = 1\n[[package]]\nname = "strands-agents"\n')
        if python_version is not None:
            (context / ".python-version").write_text(python_version)
    return prepare


def own_dockerfile_of(run: Run) -> str:
    [build] = run.docker("buildx", "build")
    argv = build["argv"]
    assert argv[argv.index("--file") + 1] == f"{run.work}/own/Dockerfile", argv
    assert argv[-1] == os.path.realpath(run.context), "the context is still the caller's"
    return build["dockerfile"]


def test_a_python_context_without_dockerfile_builds_with_agentbuilds_dockerfile(run_buildspec) -> None:
    # The trapped context's .python-version says "system": not a version, so the default.
    run = run_buildspec(prepare=python_project(), AGENTBUILD_ENTRY_POINT="main.py", **SECRET_ENV)
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert own_dockerfile_of(run) == OWN_REQUIREMENTS_DOCKERFILE
    # Everything else as for the caller's Dockerfile, secrets included.
    argv = run.build_argv()
    assert "id=PYPI_TOKEN,env=AGENTBUILD_SECRET_PYPI_TOKEN" in argv
    assert f"BUILDKIT_SYNTAX={FRONTEND}" in " ".join(argv)
    assert "agentbuild's Dockerfile for Python 3.13" in run.stdout
    assert run.exports == {"IMAGE_DIGEST": BUILT, "IMAGE_URI": f"{REPO}@{BUILT}", "ATTESTATIONS_URI": ATTESTATIONS}


def test_a_uv_project_installs_its_lock_binary_only_and_starts_its_module(run_buildspec) -> None:
    run = run_buildspec(prepare=python_project(requirements=None, lock=True, entry="src/agent/main.py",
                                               python_version="3.12.4\n"),
                        AGENTBUILD_ENTRY_POINT="src/agent/main.py")
    assert_context_untouched(run)
    assert run.returncode == 0, run
    text = own_dockerfile_of(run)
    assert "FROM ghcr.io/astral-sh/uv:python3.12-bookworm-slim AS deps\n" in text
    assert "\nFROM python:3.12-slim-bookworm\n" in text
    assert "COPY pyproject.toml uv.lock /app/\n" in text
    assert "RUN uv sync --frozen --no-dev --no-install-project --no-editable --no-build\n" in text
    # No distro among the dependencies: no opentelemetry-instrument.
    assert text.endswith('CMD ["python", "-m", "src.agent.main"]\n'), text
    assert "USER 1000\n" in text and "EXPOSE 8080\n" in text


def test_an_entry_point_that_is_no_module_path_is_started_as_a_file(run_buildspec) -> None:
    run = run_buildspec(prepare=python_project(entry="my-agent/main.py", requirements="x\n"),
                        AGENTBUILD_ENTRY_POINT="my-agent/main.py")
    assert run.returncode == 0, run
    assert own_dockerfile_of(run).endswith('CMD ["python", "my-agent/main.py"]\n')


@pytest.mark.parametrize("prepare, entry, message", [
    (python_project(), None, "give the request an entryPoint"),
    (python_project(requirements=None), "main.py", "add requirements.txt, or pyproject.toml with uv.lock"),
    (python_project(), "other.py", "entryPoint 'other.py' is not a regular file"),
    (lambda c: (python_project()(c), (c / "main.py").unlink(), (c / "main.py").symlink_to("/etc/hostname")),
     "main.py", "entryPoint 'main.py' is not a regular file"),
    (lambda c: (python_project(requirements=None)(c), (c / "requirements.txt").symlink_to("/etc/hostname")),
     "main.py", "add requirements.txt"),
    (python_project(python_version="3.9\n"), "main.py", "Python 3.10 to 3.14"),
])
def test_agentbuilds_dockerfile_needs_an_entry_point_and_python_dependencies(
        run_buildspec, prepare, entry, message) -> None:
    run = run_buildspec(prepare=prepare, AGENTBUILD_ENTRY_POINT=entry)
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert message in run.output, run
    assert run.docker("buildx", "build") == [], run


def test_a_context_with_its_own_dockerfile_is_built_as_before(run_buildspec) -> None:
    def prepare(context: Path) -> None:
        python_project()(context)
        (context / "Dockerfile").write_text("FROM scratch\n")

    run = run_buildspec(prepare=prepare, AGENTBUILD_ENTRY_POINT="main.py")
    assert_context_untouched(run)
    assert run.returncode == 0, run
    assert run.build_argv() == expected_build_argv(run)
    assert run.docker("buildx", "build")[0]["dockerfile"] == "FROM scratch\n"
    # A named Dockerfile that is missing is an error, never a reason to use ours.
    run = run_buildspec(prepare=python_project(), AGENTBUILD_ENTRY_POINT="main.py",
                        AGENTBUILD_DOCKERFILE="docker/Dockerfile")
    assert run.returncode != 0, run
    assert "AGENTBUILD_DOCKERFILE is not a regular file" in run.output, run


@pytest.mark.parametrize("entry", ["/main.py", "../main.py", "a/../../main.py", "main.sh", "$(id).py"])
def test_a_bad_entry_point_is_refused_before_anything_runs(run_buildspec, entry) -> None:
    run = run_buildspec(prepare=python_project(), AGENTBUILD_ENTRY_POINT=entry)
    assert_context_untouched(run)
    assert run.returncode != 0, run
    assert "AGENTBUILD_ENTRY_POINT must be" in run.output, run
    assert run.docker("login") == [], run


def test_the_dockerfile_version_is_the_one_image_tags_hash() -> None:
    plan = (ROOT / "crates/core/src/domain/plan.rs").read_text()
    [version] = re.findall(r'pub const OWN_DOCKERFILE: &str = "([^"]+)";', plan)
    assert f"# {version}: agentbuild's Dockerfile" in BUILDSPEC.read_text()
    assert OWN_REQUIREMENTS_DOCKERFILE.startswith(f"# {version}:")
