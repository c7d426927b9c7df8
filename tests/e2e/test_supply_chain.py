"""Know what runs (issue 24), end to end on the local stack: the vulnerability gate before a
deploy reads ECR's scan of the new image (scripted in AWS's shape through the injection
endpoint, POST /ecr/scan-findings; local/agentbuild_local/ecr_scans.py), blocks a CRITICAL
finding with a fix naming it, and deploys the same request once it accepts the finding,
recording the acceptance; every record carries its provenance.

Run: make test-e2e ARGS="-k supply_chain"
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

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
    assert dep["status"] == "FAILED" and dep.get("runtimeId") is None, dep
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
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    assert "deploy.acceptFindings" in json.loads(d["cause"])["errorMessage"], d
    assert stack.record(bad) is None


@pytest.mark.serial
def test_a_code_builds_record_names_its_sbom_of_the_real_packages_and_its_provenance(stack):
    """The sample agent (examples/code-agent) as a code artifact, its layer built for real: the
    record names the layer's CycloneDX SBOM (the real packages and versions) and its scan, and
    carries the layer build's provenance; the deploy's gate records the scan's verdict."""
    from test_code_artifact import TIMEOUT, agent_files, request, upload

    requirements = "bedrock-agentcore==1.25.0\nstrands-agents==1.62.0\n"
    header = "agentbuild dependency layer v1\nruntime=PYTHON_3_13\nplatform=aarch64-manylinux2014\n\n"
    key = hashlib.sha256((header + requirements).encode()).hexdigest()
    # Content-addressed and kept across runs: forget it so this run builds it (with its SBOM).
    stack.s3.delete_object(Bucket=stack.bucket, Key=f"dependencies/{key}.zip")
    project = f"sbom-{uid()}"
    source = upload(stack, project, "support", agent_files())
    name = f"sbom-{uid()}"
    d = stack.run(name, request(project, source), timeout=TIMEOUT)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(name)
    art = rec["artifact"]
    assert art["dependencies"]["key"] == key, art
    sbom_ref = art["sbom"]
    assert sbom_ref["uri"] == f"s3://{stack.bucket}/dependencies/{key}.sbom.json", sbom_ref
    assert sbom_ref["format"] == "CycloneDX 1.5 JSON" and sbom_ref["packages"] >= 20, sbom_ref
    sbom = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"dependencies/{key}.sbom.json")["Body"].read())
    got = {c["name"]: c["version"] for c in sbom["components"]}
    assert got["strands-agents"] == "1.62.0" and got["bedrock-agentcore"] == "1.25.0", got
    assert len(got) == sbom_ref["packages"] and "boto3" in got and "pydantic" in got
    hashes = [h for c in sbom["components"] for r in c.get("externalReferences", []) for h in r.get("hashes", [])]
    assert hashes and all(h["alg"] == "SHA-256" and len(h["content"]) == 64 for h in hashes)
    scan = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"dependencies/{key}.scan.json")["Body"].read())
    assert scan["status"] in ("COMPLETE", "PARTIAL", "UNAVAILABLE") and scan["packages"] == len(got), scan
    assert scan["status"] != "UNAVAILABLE" or scan["reason"], scan
    # Provenance: the source, the layer build, its buildspec.
    prov = rec["provenance"]
    assert prov["sourceUri"] == source and prov["sourceSha256"] == rec["source"]["sha256"], prov
    assert prov["buildspec"] == "buildspec-code.yml" and len(prov["buildspecSha256"]) == 64
    assert prov["codebuildBuildId"], prov
    assert prov["builderImages"][0]["image"].startswith("aws/codebuild/"), prov
    # The gate judged the layer's scan (UNAVAILABLE here without PyPI's advisory API): recorded.
    gate = rec["deployment"]["scan"]
    assert gate["source"] == "pip-audit" and gate["status"] in ("PASSED", "UNAVAILABLE", "ACCEPTED"), gate


def test_the_record_names_ecrs_signature_of_the_image_or_why_there_is_none(stack):
    """ECR's managed signing (scripted through POST /ecr/signing; local/agentbuild_local/
    ecr_signing.py adds DescribeImageSigningStatus and ListImageReferrers to moto): a signed
    image's record names the signing profile and the signature referrer; an image no signing
    rule matched (the default, ImageSigning=DISABLED) says so."""
    agent = f"signed-{uid()}"
    profile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/agentbuild"
    status, body, _ = stack.http("POST", f"{stack.inject_url}/ecr/signing",
                                 {"match": f"{agent}-", "status": "COMPLETE", "signingProfileArn": profile})
    assert status == 200, body
    name = f"sig-{uid()}"
    d = stack.run(name, stack.request(agent=agent), timeout=60)
    assert d["status"] == "SUCCEEDED", d
    image = stack.record(name)["image"]
    sig = image["signature"]
    assert (sig["status"], sig["signingProfileArn"]) == ("COMPLETE", profile), sig
    expected = "sha256:" + hashlib.sha256(f"notation-signature:{image['digest']}".encode()).hexdigest()
    assert sig["digest"] == expected and sig["reference"] == f"{image['repositoryUri']}@{expected}", sig

    unsigned = f"nosig-{uid()}"
    d = stack.run(unsigned, stack.request(agent=f"unsigned-{uid()}"), timeout=60)
    assert d["status"] == "SUCCEEDED", d
    sig = stack.record(unsigned)["image"]["signature"]
    assert sig["status"] == "UNAVAILABLE" and "ImageSigning is DISABLED" in sig["reason"], sig


def test_build_finished_and_a_reused_record_name_the_images_attestations(stack):
    """The buildspec exports ATTESTATIONS_URI (scripted here as CodeBuild's exported variable):
    the record and its Build Finished event name it, and so does the record of the same request
    REUSED (the reused build's SBOM and provenance describe the very same image)."""
    from test_events import Announcements, only

    agent = f"attest-{uid()}"
    req = stack.request(agent=agent)
    digest = "sha256:" + hashlib.sha256(agent.encode()).hexdigest()
    repo = stack.env["AGENTBUILD_REPOSITORY_URI"]
    built = f"att-{uid()}"
    attestations = f"s3://{stack.bucket}/attestations/{agent}-x/"
    stack.script({"match": req["project"], "exported": {
        "IMAGE_DIGEST": digest, "IMAGE_URI": f"{repo}@{digest}", "ATTESTATIONS_URI": attestations}})
    d = stack.run(built, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(built)
    assert rec["image"]["attestations"] == attestations, rec["image"]
    detail = only(Announcements(stack).of(built), built)
    assert detail["image"]["attestations"] == attestations, detail
    assert detail["image"].get("signature") == rec["image"].get("signature"), (detail, rec["image"])

    reused = f"att-reused-{uid()}"
    d = stack.run(reused, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(reused)
    assert rec["status"] == "REUSED" and rec["image"]["attestations"] == attestations, rec
