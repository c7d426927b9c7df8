# agentbuild — developer verbs. Tools live in the repo (.venv, .venv-checkov, node_modules),
# installed at pinned versions by scripts/tools.sh; every target that needs them depends on `tools`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv/bin
PY := $(VENV)/python

.PHONY: help tools local-up local-down local-status local-env test-local test-local-e2e test demo package

help:
	@echo "make tools         install the pinned tools into .venv, .venv-checkov, node_modules"
	@echo "make local-up      start the local stack (moto + ASL engine + the real handlers); env in .local/env"
	@echo "make local-down    stop it"
	@echo "make test-local    test the local stack's glue (local/test_stack.py)"
	@echo "make test-local-e2e  the same, plus the real definition + real handlers on a throwaway stack"
	@echo "make test | demo | package"

tools:
	@bash scripts/tools.sh

local-up: tools
	@$(PY) local/stack.py up

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
	@AGENTBUILD_LOCAL_E2E=1 $(PY) -m pytest local -q

# --- placeholders, completed by the lead --------------------------------------------------
test: test-local
	@echo "make test: TODO(lead) cargo test --workspace + end-to-end tests on the local stack"

demo: local-up
	@echo "make demo: TODO(lead) upload a sample zip and run one build through the local stack"

package: tools
	@echo "make package: TODO(lead) cargo lambda build --release --arm64 --output-format zip / sam build"
