#!/usr/bin/env bash
# Static checks of template.yaml, offline (no AWS account, no credentials, no Docker):
#   1. the template's BuildSpec is a verbatim copy of buildspec.yml  (scripts/sync_buildspec.py)
#   2. cfn-lint                                                      (transforms SAM itself)
#      (also with ImageSigning=ENABLED EnhancedScanning=ENABLED). `sam validate --lint` is
#      this same cfn-lint again (SAM CLI runs the venv's cfn-lint), so it is not run a third time.
#   3. checkov on the SAM-transformed CloudFormation                 (scripts/sam_transform.py;
#      on raw SAM it misses the state machine, the API and the generated roles). Skipped checks
#      and why: .checkov.yaml.
# Tools come from the project venv (scripts/tools.sh); VENV=... points elsewhere.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
for tool in python cfn-lint checkov; do
  [[ -x "$VENV/bin/$tool" ]] || { echo "check-template: $VENV/bin/$tool missing; run scripts/tools.sh" >&2; exit 1; }
done

# Offline and quiet: SAM and samtranslator want a region for pseudo parameters only.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" SAM_CLI_TELEMETRY=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "check-template: buildspec copy"
"$VENV/bin/python" scripts/sync_buildspec.py --check

echo "check-template: cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}')"
"$VENV/bin/cfn-lint" template.yaml

# The supply-chain settings' resources only exist behind conditions (off by default): lint
# with them on too (tests/buildspec/test_template_supply_chain.py shows the lint reaches them).
echo "check-template: cfn-lint with ImageSigning=ENABLED EnhancedScanning=ENABLED"
"$VENV/bin/cfn-lint" template.yaml --parameters ImageSigning=ENABLED EnhancedScanning=ENABLED

echo "check-template: checkov $("$VENV/bin/checkov" --version) on the transformed template"
"$VENV/bin/python" scripts/sam_transform.py template.yaml > "$WORK/template.json"
"$VENV/bin/checkov" --config-file .checkov.yaml --file "$WORK/template.json"

echo "check-template: ok"
