"""Harness for buildspec-code.yml (the code path's dependency layer): its commands run as
CodeBuild runs them (one bash, local/agentbuild_local/codebuild_real.py, the runner the local
stack uses), with REAL pip and uv against a package index served here on loopback, and a
stand-in `aws` that serves the requirements object and keeps what is uploaded.

The index holds uv (the pinned wheel, checked by hash), a pure wheel `goodpkg` (a package, a
console script, and a .pth file that would write a marker if Python ever processed it on this
host), and `evilpkg`, an sdist only, whose setup.py would write a marker if anything built it.
The build starts in a trapped directory, as CodeBuild starts in $CODEBUILD_SRC_DIR: a
uv.toml and pip.conf naming another index, a sitecustomize.py, a requirements.txt asking for
evilpkg, and PYTHONPATH / PIP_* / UV_* variables pointing at them. No marker may appear.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import platform
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))

from agentbuild_local.codebuild_real import run_buildspec  # noqa: E402

BUILDSPEC = ROOT / "buildspec-code.yml"
UV_PIN = "uv==0.13.8"
WHEELS = ROOT / ".local" / "wheels"

FAKE_AWS = r'''
import json, os, shutil, sys
store = os.environ["HARNESS_S3"]
with open(os.path.join(store, "calls.jsonl"), "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "env": sorted(os.environ)}) + "\n")
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
if args[:2] == ["s3api", "get-object"]:
    source = os.path.join(store, opt("--key").replace("/", "_"))
    if not os.path.exists(source):
        sys.exit("An error occurred (NoSuchKey) when calling the GetObject operation")
    shutil.copy(source, args[-1])
    print(json.dumps({"VersionId": "v-req"}))
elif args[:2] == ["s3api", "put-object"]:
    shutil.copy(opt("--body"), os.path.join(store, opt("--key").replace("/", "_")))
    print("v-layer-1")
else:
    sys.exit(f"fake aws: unexpected {args}")
'''


def layer_key(requirements: str, runtime: str) -> str:
    header = f"agentbuild dependency layer v1\nruntime={runtime}\nplatform=aarch64-manylinux2014\n\n"
    return hashlib.sha256(header.encode() + requirements.encode()).hexdigest()


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def good_wheel(markers: Path) -> bytes:
    files = {
        "goodpkg/__init__.py": b"VALUE = 1\n",
        "goodpkg.pth": f"import os; open({str(markers / 'pth-ran')!r}, 'w')\n".encode(),
        "goodpkg-1.0.data/scripts/goodtool": b"#!python\nimport goodpkg\n",
        "goodpkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: goodpkg\nVersion: 1.0\n",
        "goodpkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: harness\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},{record_hash(d)},{len(d)}\n" for n, d in files.items())
    record += "goodpkg-1.0.dist-info/RECORD,,\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in {**files, "goodpkg-1.0.dist-info/RECORD": record.encode()}.items():
            z.writestr(name, data)
    return out.getvalue()


def evil_sdist(markers: Path) -> bytes:
    import tarfile

    setup = f"open({str(markers / 'setup-ran')!r}, 'w')\nfrom setuptools import setup\nsetup(name='evilpkg', version='1.0')\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in (("evilpkg-1.0/setup.py", setup),
                           ("evilpkg-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def uv_wheel() -> Path:
    """The pinned uv wheel for this host (downloaded once into .local/wheels)."""
    machine = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    found = sorted(WHEELS.glob(f"uv-0.13.8-*{machine}*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        UV_PIN, "--only-binary", ":all:", "--no-deps", "--platform", f"manylinux2014_{machine}",
                        "--python-version", "3.12", "-d", str(WHEELS)], check=True)
        found = sorted(WHEELS.glob(f"uv-0.13.8-*{machine}*.whl"))
    return found[0]


SBOM_TOOLS = ("cyclonedx-bom==7.5.0", "pip-audit==2.10.1")


def sbom_tool_wheels() -> list[Path]:
    """The SBOM and scan tools the buildspec installs (issue 24), with their dependencies, as
    wheels for this host's Python (downloaded once into .local/wheels/sbom-tools)."""
    folder = WHEELS / "sbom-tools"
    stamp = folder / ".pins"
    if not stamp.exists() or stamp.read_text() != " ".join(SBOM_TOOLS):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        *SBOM_TOOLS, "--only-binary", ":all:", "-d", str(folder)], check=True)
        stamp.write_text(" ".join(SBOM_TOOLS))
    return sorted(folder.glob("*.whl"))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """A PEP 503 index on loopback: uv, goodpkg (wheel), evilpkg (sdist only), and the SBOM and
    scan tools with their dependencies."""
    import re

    root = tmp_path_factory.mktemp("index")
    markers = tmp_path_factory.mktemp("markers")
    files = {uv_wheel().name: uv_wheel().read_bytes(), "goodpkg-1.0-py3-none-any.whl": good_wheel(markers),
             "evilpkg-1.0.tar.gz": evil_sdist(markers),
             **{wheel.name: wheel.read_bytes() for wheel in sbom_tool_wheels()}}
    (root / "files").mkdir()
    pages: dict[str, list[str]] = {}
    for name, data in files.items():
        (root / "files" / name).write_bytes(data)
        project = re.sub(r"[-_.]+", "-", name.split("-")[0]).lower()
        digest = hashlib.sha256(data).hexdigest()
        pages.setdefault(project, []).append(f'<a href="../../files/{name}#sha256={digest}">{name}</a>')
    for project, links in pages.items():
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html><body>" + "".join(links) + "</body></html>\n")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/simple", "markers": markers,
           "goodpkg_sha256": hashlib.sha256(files["goodpkg-1.0-py3-none-any.whl"]).hexdigest()}
    server.shutdown()


def trapped_dir(top: Path, markers: Path) -> Path:
    """Where the build's shell starts: everything in it tries to take over the build."""
    src = top / "src"
    src.mkdir(parents=True)
    (src / "uv.toml").write_text('index-url = "https://evil.example/simple"\n')
    (src / "pip.conf").write_text("[global]\nindex-url = https://evil.example/simple\n")
    (src / "sitecustomize.py").write_text(f"open({str(markers / 'sitecustomize-ran')!r}, 'w')\n")
    (src / "requirements.txt").write_text("evilpkg==1.0\n")
    (src / "setup.py").write_text(f"open({str(markers / 'context-setup-ran')!r}, 'w')\n")
    return src


@pytest.fixture
def build(tmp_path, index):
    spec = yaml.safe_load(BUILDSPEC.read_text())
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "aws").write_text(f"#!{sys.executable} -I\n" + FAKE_AWS)
    (fakebin / "aws").chmod(0o755)
    (fakebin / "python3").symlink_to(sys.executable)
    store = tmp_path / "s3"
    store.mkdir()

    def run(requirements: str | None, runtime: str = "PYTHON_3_12", key: str | None = None, **env: str):
        key = key or layer_key(requirements or "", runtime)
        if requirements is not None:
            (store / f"dependencies_{key}.requirements.txt").write_text(requirements)
        src = trapped_dir(tmp_path / f"run{len(list(tmp_path.glob('run*')))}", index["markers"])
        lines: list[str] = []
        full_env = {"PATH": f"{fakebin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(src.parent), "LANG": "C.UTF-8",
                    "TMPDIR": str(src.parent), "HARNESS_S3": str(store), "CODEBUILD_SRC_DIR": str(src),
                    "PYTHONPATH": str(src), "PIP_INDEX_URL": "https://evil.example/simple",
                    "UV_INDEX_URL": "https://evil.example/simple", "PIP_CONFIG_FILE": str(src / "pip.conf"),
                    "UV_CONFIG_FILE": str(src / "uv.toml"), "AGENTBUILD_BUCKET": "bucket",
                    "AGENTBUILD_PACKAGE_INDEX": index["url"], "AGENTBUILD_DEPENDENCIES_KEY": key,
                    "AGENTBUILD_RUNTIME": runtime, "AGENTBUILD_SBOM_SELF_CHECK": "off",
                    **network_env(), **env}
        status, phase, _, exported = run_buildspec(spec, full_env, src, lines.append)
        calls = [json.loads(line) for line in (store / "calls.jsonl").read_text().splitlines()] \
            if (store / "calls.jsonl").exists() else []
        return {"status": status, "phase": phase, "exported": exported, "log": "\n".join(lines),
                "store": store, "key": key, "calls": calls}

    yield run
    assert sorted(p.name for p in index["markers"].iterdir()) == [], "something from the context or a package ran"


def network_env() -> dict[str, str]:
    import os

    return {k: os.environ[k] for k in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(k)}


def test_layer_key_matches_codezip():
    # crates/codezip/src/dependencies.rs pins the same value (its golden key).
    assert layer_key("bedrock-agentcore>=0.1\nstrands-agents\n", "PYTHON_3_12") == \
        "ba1513af89a875d83792d3e081c6ef4c2204c03660295fce075202ef100b0c6b"


def test_builds_a_deterministic_layer_of_binary_wheels(build):
    run = build("goodpkg==1.0\n")
    assert (run["status"], run["phase"]) == ("SUCCEEDED", None), run["log"]
    layer = run["store"] / f"dependencies_{run['key']}.zip"
    data = layer.read_bytes()
    assert run["exported"] == {"LAYER_KEY": run["key"], "LAYER_VERSION_ID": "v-layer-1",
                               "LAYER_SHA256": hashlib.sha256(data).hexdigest(), "LAYER_SIZE": str(len(data)),
                               "LAYER_SBOM_VERSION_ID": "v-layer-1", "LAYER_SBOM_PACKAGES": "1",
                               "LAYER_SCAN_VERSION_ID": "v-layer-1", "LAYER_SCAN_STATUS": "UNAVAILABLE"}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert names == sorted(names)
        assert "goodpkg/__init__.py" in names and "goodpkg.pth" in names
        assert z.read("bin/goodtool").startswith(b"#!/usr/bin/env python3\n")
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert not [n for n in names if n.endswith(".pyc")]
    # The upload: the key's zip, with its checksum.
    put = next(c["argv"] for c in run["calls"] if c["argv"][1] == "put-object")
    assert put[put.index("--key") + 1] == f"dependencies/{run['key']}.zip"
    assert "--checksum-algorithm" in put


SCHEMA_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
validator = JsonStrictValidator(SchemaVersion.V1_5)
text = open(sys.argv[2]).read()
broken = json.loads(text)
broken["serialNumber"] = "not-a-urn"
for sbom in (text, json.dumps(broken)):
    error = validator.validate_str(sbom)
    print("invalid" if error else "valid")
"""


def test_uploads_a_cyclonedx_sbom_and_a_scan_that_never_passes_silently(build, index):
    # As on AWS: the tool checks its own SBOM (the other tests here skip that, as the local stack does).
    run = build("goodpkg==1.0\n", AGENTBUILD_SBOM_SELF_CHECK="on")
    assert run["status"] == "SUCCEEDED", run["log"]
    assert "Validation skipped" not in run["log"]
    sbom = json.loads((run["store"] / f"dependencies_{run['key']}.sbom.json").read_text())
    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.5")
    [component] = sbom["components"]
    assert (component["name"], component["version"], component["purl"]) == ("goodpkg", "1.0", "pkg:pypi/goodpkg@1.0")
    # The hash the install was checked against: the wheel's own.
    hashes = [h["content"] for ref in component["externalReferences"] for h in ref.get("hashes", [])]
    assert hashes == [index["goodpkg_sha256"]]
    # And the pinned tool's own strict validator holds the uploaded SBOM to the CycloneDX 1.5
    # schema here (and rejects a copy with a malformed serial number, so the check can fail).
    [tools] = run["store"].parent.glob("run*/agentbuild-layer.*/sbom-tools")
    sbom_path = run["store"] / f"dependencies_{run['key']}.sbom.json"
    checked = subprocess.run([sys.executable, "-I", "-c", SCHEMA_CHECK, str(tools), str(sbom_path)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and checked.stdout.split() == ["valid", "invalid"], checked
    # goodpkg is on no advisory database this harness reaches: the scan says so, it does not pass.
    scan = json.loads((run["store"] / f"dependencies_{run['key']}.scan.json").read_text())
    assert scan["status"] == "UNAVAILABLE" and scan["findings"] == [] and scan["packages"] == 1
    assert scan["reason"]
    keys = [c["argv"][c["argv"].index("--key") + 1] for c in run["calls"] if c["argv"][1] == "put-object"]
    assert keys == [f"dependencies/{run['key']}.{suffix}" for suffix in ("zip", "sbom.json", "scan.json")]


def test_an_sdist_only_dependency_fails_naming_the_package(build):
    run = build("evilpkg==1.0\n")
    assert (run["status"], run["phase"]) == ("FAILED", "BUILD")
    assert "evilpkg" in run["log"], run["log"]
    assert not [c for c in run["calls"] if c["argv"][1] == "put-object"]


def test_a_requirements_object_that_is_not_its_key_fails(build):
    run = build("goodpkg==1.0\n", key=layer_key("other==1\n", "PYTHON_3_12"))
    assert (run["status"], run["phase"]) == ("FAILED", "PRE_BUILD")
    assert "does not match its key" in run["log"]


@pytest.mark.parametrize("override", [
    {"AGENTBUILD_DEPENDENCIES_KEY": "../../etc/passwd"},
    {"AGENTBUILD_RUNTIME": "PYTHON_2_7"},
    {"AGENTBUILD_RUNTIME": "PYTHON_3_12; touch /tmp/x"},
    {"AGENTBUILD_PACKAGE_INDEX": "http://evil.example/simple"},
    {"AGENTBUILD_PACKAGE_INDEX": "https://evil.example/simple$(touch /tmp/x)"},
])
def test_refuses_bad_per_build_values_before_anything_runs(build, override):
    run = build(None, **override)
    assert (run["status"], run["phase"]) == ("FAILED", "INSTALL"), run["log"]
    assert run["calls"] == []


def test_build_secrets_reach_uv_only(build):
    run = build("goodpkg==1.0\n", AGENTBUILD_BUILD_SECRETS='["INDEX_TOKEN", "other"]',
                AGENTBUILD_SECRET_INDEX_TOKEN="s3cr3t-value", AGENTBUILD_SECRET_other="x")
    assert run["status"] == "SUCCEEDED", run["log"]
    assert run["calls"] and all(not [n for n in c["env"] if n.startswith("AGENTBUILD_SECRET_")]
                                for c in run["calls"])
    assert "s3cr3t-value" not in run["log"]


@pytest.fixture
def proxy():
    """An HTTP(S) proxy on loopback that records every request and lets none through: what the
    build would fetch from outside the stack's index (uv's Python downloads, pip-audit's advisory
    data) shows up here instead of reaching the internet."""
    seen: list[str] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def refuse(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_error(403, "harness proxy: no outside network")

        do_CONNECT = do_GET = do_POST = refuse

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"env": {"HTTPS_PROXY": url, "HTTP_PROXY": url, "NO_PROXY": "127.0.0.1,localhost"}, "seen": seen}
    server.shutdown()


def test_never_fetches_an_interpreter_for_another_python_version(build, proxy):
    # The host's python3 (this venv's) is not 3.13: uv resolves and installs wheels for 3.13 with
    # it and never downloads a CPython (it would, from GitHub, without --no-python-downloads).
    if sys.version_info[:2] == (3, 13):
        pytest.skip("the harness's python3 is 3.13 itself: no other version to ask for")
    run = build("goodpkg==1.0\n", runtime="PYTHON_3_13", **proxy["env"])
    assert run["status"] == "SUCCEEDED", run["log"]
    assert run["exported"]["LAYER_SBOM_PACKAGES"] == "1"
    # The only outside requests are pip-audit's advisory lookups (refused: scan UNAVAILABLE).
    hosts = {line.split()[1].split("/")[2] if "://" in line else line.split()[1] for line in proxy["seen"]}
    assert hosts <= {"pypi.org:443", "pypi.org"}, proxy["seen"]


@pytest.mark.parametrize("ids", ['["a b"]', '["$(id)"]', "not json", '["x";]', "[" + ",".join(['"s"'] * 17) + "]"])
def test_refuses_malformed_build_secret_ids(build, ids):
    run = build("goodpkg==1.0\n", AGENTBUILD_BUILD_SECRETS=ids)
    assert (run["status"], run["phase"]) == ("FAILED", "INSTALL")
    assert "AGENTBUILD_BUILD_SECRETS" in run["log"]


def test_the_project_has_no_source_and_least_privilege():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)))
    doc = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    project = doc["Resources"]["LayerProject"]["Properties"]
    assert project["Source"]["Type"] == "NO_SOURCE"
    assert project["Source"]["BuildSpec"] == BUILDSPEC.read_text()
    assert project["Environment"]["Type"] == "ARM_LAMBDA_CONTAINER"
    assert project["Environment"]["ComputeType"] == "LayerComputeType" or project["Environment"]["ComputeType"]
    assert project["Environment"]["PrivilegedMode"] is False
    statements = doc["Resources"]["LayerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = [s for s in statements if isinstance(s, list)]
    assert [c[1]["Action"] for c in conditional] == ["secretsmanager:GetSecretValue"]
    assert conditional[0][0] == "HasBuildSecrets"
    statements = [s for s in statements if isinstance(s, dict)]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:PutObject"]
    resources = {s["Sid"]: s["Resource"] for s in statements}
    assert resources["ReadRequirements"].endswith("/dependencies/*.requirements.txt")
    assert [r.split("/dependencies/")[1] for r in resources["WriteLayers"]] == ["*.zip", "*.sbom.json", "*.scan.json"]
