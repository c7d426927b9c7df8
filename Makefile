# agentbuild — developer verbs. Tools live in the repo (.venv, .venv-checkov, node_modules),
# installed at pinned versions by scripts/tools.sh; every target that needs them depends on `tools`
# (`make test` installs them in the background while Rust compiles; `make demo` only the venvs it runs).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv/bin
PY := $(VENV)/python

.PHONY: help tools local-up local-down local-status local-env test-local test-local-e2e test demo package rebuild bench bench-pipeline bench-artifact test-e2e

help:
	@echo "make tools         install the pinned tools into .venv, .venv-checkov, node_modules"
	@echo "make local-up      start the local stack (moto + ASL engine + the real handlers); env in .local/env"
	@echo "make local-down    stop it"
	@echo "make test-local    test the local stack's glue (local/test_stack.py)"
	@echo "make test-local-e2e  the same, plus the real definition + real handlers on a throwaway stack"
	@echo "make test          every test (starts and stops the local stack if none runs)"
	@echo "make demo          the code agent as a code artifact, deployed READY on the local stack;"
	@echo "                   ARTIFACT=container for the container sample, REQUEST=file.json for yours"
	@echo "make rebuild       one fleet rebuild on the local stack (every agent, at most N at once); prints its summary"
	@echo "make bench         benchmarks (printed, not asserted)"
	@echo "make bench-pipeline  what a build costs the pipeline (transitions, invocations, lag) on the local stack"
	@echo "make bench-artifact  code zip of examples/code-agent: agentbuild vs the AgentCore toolkit's CodeZipPackager (cold, code-only)"
	@echo "make package       arm64 release zips in target/lambda/<fn>/bootstrap.zip"

tools:
	@bash scripts/tools.sh

local-up: tools
	@source scripts/cargo-env.sh && $(PY) local/stack.py up

# Needs no venv: stopping uses the standard library only.
local-down:
	@python3 local/stack.py down

local-status:
	@python3 local/stack.py status

local-env:
	@python3 local/stack.py env

test-local: tools
	@$(PY) -m pytest local -q

# Builds the handlers and runs a second, throwaway stack (its own ports and folder).
test-local-e2e: tools
	@source scripts/cargo-env.sh && AGENTBUILD_LOCAL_E2E=1 $(PY) -m pytest local -q

# --- the two commands of the README -----------------------------------------------------
# All tests: fmt, clippy, cargo test (offline), ASL + template checks, stack glue, end to end.
# The tools install in the background while Rust compiles (scripts/test.sh).
test:
	@bash scripts/test.sh

# One build end to end on the local stack; REQUEST=path/to/request.json for your own.
# The tools install in the background while Rust compiles (scripts/demo.sh).
demo:
	@ARTIFACT="$(ARTIFACT)" REQUEST="$(REQUEST)" bash scripts/demo.sh

# Only the end-to-end suite (extra pytest arguments: make test-e2e ARGS="-k deadline").
test-e2e: tools
	@source scripts/cargo-env.sh && bash scripts/e2e.sh $(ARGS)

# --- more verbs ---------------------------------------------------------------------------
# One fleet rebuild on the local stack: an execution of the fleet-rebuild machine, as the schedule starts it.
rebuild: local-up
	@bash scripts/rebuild.sh

# Benchmarks print numbers; nothing is asserted.
bench: tools
	@cargo bench -q -p agentbuild-core --features lambda --bench domain
	@cargo bench -q -p agentbuild-cli --bench pack

# Builds of several lengths through the local stack, event path and fallback path, next to the
# old poll loop's computed figures and the .sync anchor (printed, not asserted; not in make test).
bench-pipeline: tools
	@bash scripts/bench-pipeline.sh

# The code artifact of examples/code-agent by agentbuild and by the AgentCore starter toolkit's
# CodeZipPackager (pinned, in .venv-bench): cold and code-only, time and size (printed, not asserted).
bench-artifact: tools
	@bash scripts/bench-artifact.sh

# arm64 release zips for Lambda: target/lambda/<fn>/bootstrap.zip (cargo-lambda + zig).
package: tools
	@bash scripts/package.sh
