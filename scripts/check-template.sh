#!/usr/bin/env bash
# Static checks of template.yaml, offline (no AWS account, no credentials, no Docker):
#   1. the template's BuildSpec is a verbatim copy of buildspec.yml  (scripts/sync_buildspec.py)
#   2. cfn-lint                                                      (transforms SAM itself)
#      (also with ImageSigning=ENABLED EnhancedScanning=ENABLED). `sam validate --lint` is
#      this same cfn-lint again (SAM CLI runs the venv's cfn-lint), so it is not run a third time.
#   3. checkov on the SAM-transformed CloudFormation                 (scripts/sam_transform.py;
#      on raw SAM it misses the state machine, the API and the generated roles). Skipped checks
#      and why: .checkov.yaml.
# Steps 2 and 3 are skipped when they passed before on exactly the same inputs
# (scripts/check-cache.sh, target/check-cache); AGENTBUILD_NO_CHECK_CACHE=1 runs them.
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

# A check that passed on exactly these inputs (the file it reads, its config, the tool's
# version, its arguments) passes again without running: scripts/check-cache.sh.
# (The versions come from package metadata: `checkov --version` alone costs 5 s of CPU.)
source scripts/check-cache.sh
CHECK_SCRATCH="$WORK"
tool_version() {  # venv tool, distribution
  "$(dirname "$(readlink -f "$VENV/bin/$1")")/python" -c \
    'import sys; from importlib.metadata import version; print(version(sys.argv[1]))' "$2"
}
CFN_LINT_VERSION="$(tool_version cfn-lint cfn-lint)"
CHECKOV_VERSION="$(tool_version checkov checkov)"

# What else each tool reads: cfn-lint its config (.cfnlintrc[.yaml|.yml] here and in ~; files
# such a config names are not followed) and the schemas `cfn-lint --update-specs` downloads
# (used instead of the bundled ones when newer); checkov the default config files beside
# --config-file. The region is passed explicitly.
REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
CFN_LINT_READS=(template.yaml ?.cfnlintrc ?.cfnlintrc.yaml ?.cfnlintrc.yml "?$HOME/.cfnlintrc"
  "?$HOME/.cfnlintrc.yaml" "?$HOME/.cfnlintrc.yml" "?${XDG_CACHE_HOME:-$HOME/.cache}/aws/cfn-lint/schemas/version.json")
checked "cfn-lint $CFN_LINT_VERSION" "${CFN_LINT_READS[@]}" -- \
  "$VENV/bin/cfn-lint" --regions "$REGION" -- template.yaml

# The supply-chain settings' resources only exist behind conditions (off by default): lint
# with them on too (tests/buildspec/test_template_supply_chain.py shows the lint reaches them).
checked "cfn-lint $CFN_LINT_VERSION with ImageSigning=ENABLED EnhancedScanning=ENABLED" "${CFN_LINT_READS[@]}" -- \
  "$VENV/bin/cfn-lint" --regions "$REGION" --parameters ImageSigning=ENABLED EnhancedScanning=ENABLED -- template.yaml

"$VENV/bin/python" scripts/sam_transform.py template.yaml > "$WORK/template.json"
checked "checkov $CHECKOV_VERSION on the transformed template" "$WORK/template.json" .checkov.yaml \
  ?.checkov.yml "?$HOME/.checkov.yaml" "?$HOME/.checkov.yml" -- \
  "$VENV/bin/checkov" --config-file .checkov.yaml --file "$WORK/template.json"

echo "check-template: ok"
