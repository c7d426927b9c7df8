"""Know what runs (issue 24), end to end on the local stack: the vulnerability gate before a
deploy reads ECR's scan of the new image (scripted in AWS's shape through the injection
endpoint, POST /ecr/scan-findings; local/agentbuild_local/ecr_scans.py), blocks a CRITICAL
finding with a fix naming it, and deploys the same request once it accepts the finding,
recording the acceptance; every record carries its provenance.

Run: AGENTBUILD_LOCAL_BUILD_TESTS=1 bash scripts/e2e.sh -k supply_chain
"""
from __future__ import annotations

from typing import Any

from conftest import Stack, uid

CVE = "CVE-2026-31337"


def critical_finding(package: str = "openssl", version: str = "3.0.1") -> dict[str, Any]:
    """One finding as Amazon Inspector reports it through DescribeImageScanFindings."""
    return {
        "awsAccountId": "123456789012",
        "findingArn": f"arn:aws:inspector2:us-east-1:123456789012:finding/{uid()}",
        "description": "A remote attacker can run code.",
        "title": f"{CVE} - {package}",
        "type": "PACKAGE_VULNERABILITY",
        "severity": "CRITICAL",
        "score": 9.8,
        "status": "ACTIVE",
        "fixAvailable": "YES",
        "exploitAvailable": "NO",
        "packageVulnerabilityDetails": {
            "vulnerabilityId": CVE,
            "source": "NVD",
            "vulnerablePackages": [{"name": package, "version": version, "packageManager": "OS",
                                    "fixedInVersion": "3.0.2"}],
            "relatedVulnerabilities": [],
        },
    }


def inject_findings(stack: Stack, agent: str, findings: list[dict[str, Any]]) -> None:
    entry = {"match": f"{agent}-", "imageScanFindings": {
        "enhancedFindings": findings, "findingSeverityCounts": {"CRITICAL": len(findings)}}}
    status, body, _ = stack.http("POST", f"{stack.inject_url}/ecr/scan-findings", entry)
    assert status == 200, body


def test_a_critical_finding_blocks_the_deploy_and_accepting_it_deploys(stack):
    agent = f"scan-{uid()}"
    inject_findings(stack, agent, [critical_finding()])
    req = dict(stack.request(agent=agent), deploy={})
    blocked = f"gate-{uid()}"
    d = stack.run(blocked, req, timeout=60)
    assert (d["status"], d.get("error")) == ("FAILED", "DeployFailed"), d
    rec = stack.record(blocked)
    assert rec["status"] == "SUCCEEDED", rec
    dep = rec["deployment"]
    assert dep["status"] == "FAILED" and "runtimeId" not in dep or dep["runtimeId"] is None, dep
    assert f"{CVE} (CRITICAL in openssl 3.0.1)" in dep["failureReason"], dep
    assert "deploy.acceptFindings" in dep["failureReason"]
    gate = dep["scan"]
    assert (gate["status"], gate["source"], gate["findings"]) == ("BLOCKED", "ecr", 1), gate
    assert [f["id"] for f in gate["blocking"]] == [CVE]
    # Provenance: the source object, the CodeBuild build, the buildspec, arg names only.
    prov = rec["provenance"]
    assert prov["sourceSha256"] == rec["source"]["sha256"] and prov["sourceUri"] == req["source"]
    assert prov["codebuildBuildId"] == rec["codebuild"]["buildId"], (prov, rec["codebuild"])
    assert prov["buildspec"] == "buildspec.yml" and len(prov["buildspecSha256"]) == 64

    # The same request, accepting the finding: the image is REUSED (same source), deployed.
    accepted = f"gate-ok-{uid()}"
    d = stack.run(accepted, dict(req, deploy={"acceptFindings": [CVE]}), timeout=60)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(accepted)
    dep = rec["deployment"]
    assert dep["status"] == "READY", dep
    gate = dep["scan"]
    assert gate["status"] == "ACCEPTED" and [f["id"] for f in gate["accepted"]] == [CVE], gate
    assert rec["request"]["deploy"]["acceptFindings"] == [CVE], rec["request"]


def test_a_clean_scan_passes_and_a_bad_accepted_id_is_refused_naming_the_field(stack):
    req = dict(stack.request(agent=f"clean-{uid()}"), deploy={})
    name = f"gate-clean-{uid()}"
    d = stack.run(name, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    gate = stack.record(name)["deployment"]["scan"]
    assert (gate["status"], gate["findings"]) == ("PASSED", 0), gate
    bad = f"gate-bad-{uid()}"
    d = stack.run(bad, dict(req, deploy={"acceptFindings": ["not an id"]}), timeout=30)
    rec = stack.record(bad)
    assert rec["status"] == "REJECTED" or d["status"] == "FAILED", (d, rec)
    assert "deploy.acceptFindings" in str(rec.get("error") if rec else d), (d, rec)
