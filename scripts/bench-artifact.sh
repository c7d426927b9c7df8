#!/usr/bin/env bash
# make bench-artifact: agentbuild vs the AgentCore starter toolkit's CodeZipPackager on
# examples/code-agent (scripts/bench_artifact.py). The toolkit lives in its own bench-only venv,
# .venv-bench, at a pinned version; agentbuild-codezip is built with the bench-artifact profile.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLKIT_PIN="bedrock-agentcore-starter-toolkit==0.3.14"
if [[ ! -f .venv-bench/.agentbuild-pins || "$(cat .venv-bench/.agentbuild-pins)" != "$TOOLKIT_PIN" ]]; then
  echo "bench-artifact: installing $TOOLKIT_PIN into .venv-bench"
  rm -rf .venv-bench
  python3 -m venv .venv-bench
  .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check "$TOOLKIT_PIN"
  echo "$TOOLKIT_PIN" > .venv-bench/.agentbuild-pins
fi
cargo build -q --profile bench-artifact -p agentbuild-codezip --bin agentbuild-codezip
exec .venv/bin/python scripts/bench_artifact.py
