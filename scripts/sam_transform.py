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

The output is kept in target/sam-transform/, keyed by the SHA-256 of everything it depends on
(the template's bytes, this script, the samtranslator and aws-sam-cli versions, the region):
the checks, the policy tests and the e2e suite each transform the same template, and importing
SAM alone costs ~1.5 s of CPU. A kept output git tracks is ignored (a commit could forge one);
AGENTBUILD_NO_TRANSFORM_CACHE=1 transforms afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / "target" / "sam-transform"

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


def transformed(text: str) -> str:
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    output = transform(with_placeholder_uris(yaml_parse(text)), {}, NoManagedPolicies())
    return json.dumps(output, indent=2, sort_keys=False) + "\n"


def committed(path: Path) -> bool:
    """A kept output that git tracks is not ours to trust (a commit could forge it)."""
    import subprocess

    out = subprocess.run(["git", "ls-files", "--", str(path)], cwd=path.parents[2],
                         capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def cache_key(source: bytes) -> str:
    import boto3  # the region samtranslator asks boto3 for (its partition comes from it)

    region = boto3.session.Session().region_name or ""
    parts = [source, Path(__file__).read_bytes(), version("aws-sam-translator").encode(),
             version("aws-sam-cli").encode(), region.encode()]
    return hashlib.sha256(b"\0".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    source = Path(sys.argv[1]).read_bytes()
    if os.environ.get("AGENTBUILD_NO_TRANSFORM_CACHE") == "1":
        sys.stdout.write(transformed(source.decode("utf-8")))
        return 0
    kept = CACHE / f"{cache_key(source)}.json"
    if not kept.is_file() or committed(kept):
        text = transformed(source.decode("utf-8"))
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(kept)  # atomic: concurrent runs write the same bytes
    sys.stdout.write(kept.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
