"""template.yaml with the supply-chain settings on (issue 24): ImageSigning=ENABLED (an AWS Signer
profile and ECR's registry signing configuration) and EnhancedScanning=ENABLED (the registry
scanning configuration). The default stack has both off, so their resources only exist behind
conditions: scripts/check-template.sh lints with the parameters on; these tests show the checks
do reach the conditional resources (a broken one fails cfn-lint; checkov's input has them).

Run: .venv/bin/python -m pytest tests/buildspec/test_template_supply_chain.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / os.environ.get("VENV", ".venv")
ENABLED = ["ImageSigning=ENABLED", "EnhancedScanning=ENABLED"]
CONDITIONAL = {"RegistryScanning": "HasEnhancedScanning", "ImageSigningProfile": "HasImageSigning",
               "RegistrySigning": "HasImageSigning"}
ENV = dict(os.environ, AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
           SAM_CLI_TELEMETRY="0")


def tool(name: str) -> str:
    path = VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} missing: run scripts/tools.sh")
    return str(path)


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("cfn-lint"), "--format", "parseable", str(template), "--parameters", *ENABLED],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)


def test_the_checks_reach_the_conditional_resources(tmp_path):
    """Each conditional resource broken the way a typo would (the two repository-filter types
    differ between the scanning and the signing configuration, which is easy to mix up; a
    Signer platform that does not exist): cfn-lint fails on each of them."""
    text = (ROOT / "template.yaml").read_text()
    swaps = [
        ("FilterType: WILDCARD_MATCH", "FilterType: WILDCARD_SWAPPED"),  # RegistrySigning
        ("- ScanFrequency: CONTINUOUS_SCAN", "- ScanFrequency: HOURLY"),  # RegistryScanning
        ("PlatformId: Notation-OCI-SHA384-ECDSA", "PlatformId: 42"),  # ImageSigningProfile
    ]
    for old, new in swaps:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    broken = tmp_path / "template.yaml"
    broken.write_text(text)
    out = cfn_lint(broken)
    assert out.returncode != 0, out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith(str(broken))]
    assert any("WILDCARD_SWAPPED" in line for line in lines), out.stdout
    assert any("HOURLY" in line for line in lines), out.stdout
    assert any("42 is not one of" in line and "Notation-OCI-SHA384-ECDSA" in line for line in lines), out.stdout


def test_the_transformed_template_checkov_scans_keeps_the_conditional_resources():
    """checkov (scripts/check-template.sh, which also runs cfn-lint with both parameters on)
    scans the SAM-transformed template: the conditional resources are in it, under their
    conditions, so checkov's pass covers them."""
    transformed = subprocess.run([tool("python"), "scripts/sam_transform.py", "template.yaml"],
                                 capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert transformed.returncode == 0, transformed.stderr
    cfn = json.loads(transformed.stdout)
    for name, condition in CONDITIONAL.items():
        assert cfn["Resources"][name].get("Condition") == condition, name
    signing = cfn["Resources"]["RegistrySigning"]["Properties"]["Rules"][0]
    assert signing["SigningProfileArn"] == {"Fn::GetAtt": ["ImageSigningProfile", "Arn"]}
    assert signing["RepositoryFilters"] == [{"Filter": {"Ref": "Repository"}, "FilterType": "WILDCARD_MATCH"}]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
