#!/usr/bin/env python3
"""`make bench-artifact`: one sample agent (examples/code-agent: strands-agents +
bedrock-agentcore) packaged as an AgentCore code zip by agentbuild and by the AgentCore starter
toolkit's `CodeZipPackager.create_deployment_package`, side by side in one run, on this machine:

  cold       no dependency cache (a fresh uv cache for both; no layer / no dependencies.zip)
  code-only  main.py changed, dependencies cached (agentbuild: dependencies/<key>.zip exists,
             so no build at all: context zip + assemble; the toolkit: its dependencies.zip)

agentbuild's steps are the production ones: `deps` (codezip::read_dependencies), uv with the
buildspec's flags (buildspec-code.yml), the layer zip, `assemble` (the raw-copy Lambda's
library). The layer zip is timed twice: by the buildspec's own Python zip step, extracted from
buildspec-code.yml (what a CodeBuild build runs; the "cold" and "code-only" rows use it), and by
`agentbuild-codezip layer` (Rust, deflate 9 on every core: another row). Printed, not asserted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "examples" / "code-agent"
BIN = ROOT / "target" / "bench-artifact" / "agentbuild-codezip"
UV = ROOT / ".venv-build" / "bin" / "uv"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
RUNTIME = "PYTHON_3_12"
# The bench's layer zip: deflate 9 on every core (no larger than zlib's 6, which the toolkit and
# the buildspec use; zlib-rs at 6 is about 1% larger).
LEVEL = 9
INDEX = os.environ.get("AGENTBUILD_BENCH_INDEX", "https://pypi.org/simple")

TOOLKIT = r"""
import json, logging, sys, time
from pathlib import Path
logging.disable(logging.CRITICAL)
from bedrock_agentcore_starter_toolkit.utils.runtime.package import CodeZipPackager
source, cache, runtime = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
out, _ = CodeZipPackager().create_deployment_package(
    source_dir=source, agent_name="bench", cache_dir=cache, runtime_version=runtime,
    requirements_file=source / "requirements.txt")
print(json.dumps({"seconds": time.perf_counter() - t0, "size": out.stat().st_size}))
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench-artifact: {' '.join(map(str, cmd[:3]))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def zip_context(source: Path, out: Path) -> None:
    """The build context as agentbuild's CLI uploads it (deflated files, sorted)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(source).as_posix())


def buildspec_zip_script() -> str:
    """The layer zip step of buildspec-code.yml, verbatim (its second python3 heredoc)."""
    spec = (ROOT / "buildspec-code.yml").read_text()
    blocks = re.findall(r"python3 -I - layer layer\.zip > layer\.out <<'PY'\n(.*?)\n\s*PY\n", spec, re.S)
    lines = blocks[0].splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def uv_install(requirements: Path, target: Path, cache: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(cache.parent), "UV_CACHE_DIR": str(cache),
           **{k: v for k, v in os.environ.items() if k in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "NO_PROXY")}}
    run([str(UV), "pip", "install", "--no-config", "--no-progress", "--target", str(target),
         "--python-platform", "aarch64-manylinux2014", "--python-version", "3.12",
         "--only-binary", ":all:", "--index-url", INDEX,
         "--requirements", str(requirements)], env)


def agentbuild_cold(work: Path, source: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    zip_context(source, work / "context.zip")
    head, requirements = run([str(BIN), "deps", str(work / "context.zip"), RUNTIME]).split("\n", 1)
    key = head.split("\t")[0]
    (work / "requirements.txt").write_text(requirements)
    t1 = time.perf_counter()
    uv_install(work / "requirements.txt", work / "layer", work / "uv-cache")
    t2 = time.perf_counter()
    run([str(BIN), "layer", str(work / "layer"), str(work / f"{key}.zip"), str(LEVEL)])
    t3 = time.perf_counter()
    out = json.loads(run([str(BIN), "assemble", str(work / f"{key}.zip"), str(work / "context.zip"),
                          "main.py", str(work / "artifact.zip")]))
    t4 = time.perf_counter()
    shutil.copytree(work / "layer", work / "layer-py")
    tp = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-", "layer-py", "layer-py.zip"], cwd=work, check=True,
                   input=buildspec_zip_script(), text=True, capture_output=True)
    pyzip = time.perf_counter() - tp
    py_out = json.loads(run([str(BIN), "assemble", str(work / "layer-py.zip"), str(work / "context.zip"),
                             "main.py", str(work / "artifact-py.zip")]))
    return {"seconds": t4 - t0, "size": out["size"], "install": t2 - t1, "layer": t3 - t2,
            "assemble": t4 - t3, "pyzip": pyzip, "key": key, "size_pyzip": py_out["size"],
            "seconds_pyzip": t4 - t0 - (t3 - t2) + pyzip, "layer_size": (work / f"{key}.zip").stat().st_size}


def agentbuild_code_only(work: Path, source: Path, key: str) -> dict[str, float]:
    t0 = time.perf_counter()
    zip_context(source, work / "context2.zip")
    # The cached layer is the one CodeBuild would have uploaded: zipped by the buildspec's step.
    out = json.loads(run([str(BIN), "assemble", str(work / "layer-py.zip"), str(work / "context2.zip"),
                          "main.py", str(work / "artifact2.zip")]))
    return {"seconds": time.perf_counter() - t0, "size": out["size"]}


def toolkit(source: Path, cache: Path, uv_cache: Path) -> dict[str, float]:
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache), "PATH": f"{UV.parent}:{os.environ['PATH']}"}
    return json.loads(run([str(BENCH_PY), "-c", TOOLKIT, str(source), str(cache), RUNTIME], env))


def main() -> int:
    for path, how in ((BIN, "cargo build --profile bench-artifact -p agentbuild-codezip"),
                      (UV, "make tools (.venv-build)"), (BENCH_PY, "scripts/bench-artifact.sh")):
        if not path.exists():
            sys.exit(f"bench-artifact: {path} missing: {how}")
    work = Path(tempfile.mkdtemp(prefix="bench-artifact."))
    try:
        ours_src, theirs_src = work / "agent-a", work / "agent-t"
        for d in (ours_src, theirs_src):
            shutil.copytree(AGENT, d)
        (work / "a").mkdir()
        cold = agentbuild_cold(work / "a", ours_src)
        tk_cold = toolkit(theirs_src, work / "tk-cache", work / "tk-uv-cache")
        for d in (ours_src, theirs_src):
            with (d / "main.py").open("a") as f:
                f.write("\n# a code-only change\n")
        code = agentbuild_code_only(work / "a", ours_src, cold["key"])
        tk_code = toolkit(theirs_src, work / "tk-cache", work / "tk-uv-cache")
        report(cold, tk_cold, code, tk_code)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(cold: dict, tk_cold: dict, code: dict, tk_code: dict) -> None:
    mb = 1024 * 1024
    print(f"bench-artifact: examples/code-agent ({RUNTIME}, aarch64-manylinux2014, index {INDEX}), "
          f"{os.cpu_count()} CPUs; toolkit = bedrock-agentcore-starter-toolkit CodeZipPackager")
    print(f"{'case':<34}{'agentbuild':>12}{'toolkit':>12}{'ratio':>9}{'zip (MB) ours/toolkit':>26}")
    as_codebuild = {**cold, "seconds": cold["seconds_pyzip"], "size": cold["size_pyzip"]}
    rows = (("cold (no dependency cache)", as_codebuild, tk_cold),
            (f"cold, layer by codezip (deflate {LEVEL})", cold, tk_cold),
            ("code-only change (deps cached)", code, tk_code))
    for name, ours, theirs in rows:
        ratio = ours["seconds"] / theirs["seconds"]
        print(f"{name:<34}{ours['seconds']:>11.2f}s{theirs['seconds']:>11.2f}s{ratio:>8.3f}x"
              f"{ours['size'] / mb:>14.2f} / {theirs['size'] / mb:.2f}")
    print(f"agentbuild cold: uv install {cold['install']:.2f}s, layer zip: the buildspec's (Python, deflate 6) "
          f"{cold['pyzip']:.2f}s or codezip's (deflate {LEVEL}, every core) {cold['layer']:.2f}s, "
          f"assemble {cold['assemble']:.2f}s")
    print(f"code-only speed-up: {tk_code['seconds'] / code['seconds']:.1f}x (goal >= 10x); "
          f"cold: {as_codebuild['seconds'] / tk_cold['seconds']:.2f}x the toolkit's time (goal <= 0.5x); "
          f"zip {'no larger' if code['size'] <= tk_code['size'] else 'LARGER'} than the toolkit's "
          f"({code['size']:,} vs {tk_code['size']:,} bytes)")


if __name__ == "__main__":
    sys.exit(main())
