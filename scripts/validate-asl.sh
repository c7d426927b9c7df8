#!/usr/bin/env bash
# Validates statemachine/*.asl.json as Step Functions would see it: every ${...} placeholder
# substituted (with ARN-shaped values, as DefinitionSubstitutions does), then checked by
# asl-validator (npm, pinned in package-lock.json) — cfn-lint does not look inside the ASL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for def in statemachine/*.asl.json; do
  python3 - "$def" "$out/$(basename "$def")" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def arn(m):
    name = m.group(1)
    if name.endswith("StateMachineArn"):
        return f"arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-{name[:-15].lower()}"
    if not name.endswith("FunctionArn"):
        sys.exit(f"{sys.argv[1]}: no test value for placeholder ${{{name}}}")
    return f"arn:aws:lambda:us-east-1:123456789012:function:agentbuild-{name[:-3]}"
open(sys.argv[2], "w").write(re.sub(r"\$\{([A-Za-z0-9]+)\}", arn, text))
PY
  node_modules/.bin/asl-validator --json-path "$out/$(basename "$def")"
done
