#!/usr/bin/env python3
"""SAM template -> plain CloudFormation JSON, offline (no AWS account, no credentials).

checkov reads a raw SAM template only partly (it misses the state machine, the API and the
roles SAM generates), so scripts/check-template.sh scans this output instead. It uses the
samtranslator library that aws-sam-cli ships, the way `sam validate` does:

  * local CodeUri/DefinitionUri paths become placeholder s3:// URIs (what `sam package` does
    with real uploads);
  * the region only feeds SAM's pseudo parameters: us-east-1 unless AWS_REGION/AWS_DEFAULT_REGION;
  * the managed-policy loader is a stub: SAM only needs it for managed policy *names* in
    Policies, and this template uses inline statements only (a name would fail loudly here).

    python scripts/sam_transform.py template.yaml > transformed.json
"""

from __future__ import annotations

import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

PLACEHOLDER_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}


class NoManagedPolicies:
    """Stands in for ManagedPolicyLoader, which would call IAM ListPolicies."""

    def load(self) -> dict[str, str]:
        return {}


def with_placeholder_uris(template: dict) -> dict:
    for name, resource in template.get("Resources", {}).items():
        prop = PLACEHOLDER_URIS.get(resource.get("Type"))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = f"s3://offline-placeholder/{name}"
    return template


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    with open(sys.argv[1], encoding="utf-8") as f:
        template = with_placeholder_uris(yaml_parse(f.read()))
    output = transform(template, {}, NoManagedPolicies())
    json.dump(output, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
