"""ECR's scan of the images the local stack pushes (issue 24), in AWS's shape.

On AWS, ECR scans an image on push (basic) or Inspector scans it continuously (enhanced), and
DescribeImageScanFindings answers with `imageScanStatus` and `imageScanFindings`
(`enhancedFindings` for Inspector). moto answers DescribeImageScanFindings only for an image
that was scanned (StartImageScan) and otherwise with a fixed fake finding; so here every pushed
image is scanned at once (scan on push), with a clean result unless a test injected one:
POST /ecr/scan-findings on the injection endpoint queues
`{"match": "<text of the image tag>", "imageScanFindings": {...AWS shape...},
"imageScanStatus"?: {...}}`; the next pushed image whose tag contains `match` gets it. The
result goes through moto's own mechanism (the backend's scan_finding_results, matched by
digest), so the handlers read it with the real SDK call.
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

_LOCK = threading.Lock()
_INJECTED: list[dict[str, Any]] = []

CLEAN = {"enhancedFindings": [], "findingSeverityCounts": {}}


def add(entry: Any) -> int:
    """Queues one injected result; ValueError naming what is wrong."""
    if not isinstance(entry, dict) or not isinstance(entry.get("match"), str) or not entry["match"]:
        raise ValueError('scan-findings takes {"match": "<tag text>", "imageScanFindings": {...}, '
                         '"imageScanStatus"?: {"status": "COMPLETE"}}')
    if not set(entry) <= {"match", "imageScanFindings", "imageScanStatus"}:
        raise ValueError(f"scan-findings: unknown keys {sorted(set(entry) - {'match', 'imageScanFindings', 'imageScanStatus'})}")
    findings = entry.get("imageScanFindings", CLEAN)
    if not isinstance(findings, dict) or not set(findings) <= {"enhancedFindings", "findings", "findingSeverityCounts"}:
        raise ValueError("imageScanFindings: enhancedFindings, findings, findingSeverityCounts (AWS's shape)")
    with _LOCK:
        _INJECTED.append(entry)
        return len(_INJECTED)


def clear() -> None:
    with _LOCK:
        _INJECTED.clear()


def _take(tag: str) -> dict[str, Any] | None:
    with _LOCK:
        for i, entry in enumerate(_INJECTED):
            if entry["match"] in tag:
                return _INJECTED.pop(i)
    return None


def scan_on_push(backend: Any, repository: str, tag: str, digest: str) -> None:
    """What ECR's scan leaves for an image just pushed: moto's answer to
    DescribeImageScanFindings for this digest."""
    repo = backend.repositories.get(repository)
    image = next((i for i in repo.images if i.image_digest == digest), None) if repo else None
    if image is None:
        return
    image.last_scan = datetime.today()
    entry = _take(tag) or {}
    backend.scan_finding_results.append({
        "registryId": repo.registry_id,
        "repositoryName": repository,
        "imageId": {"imageDigest": digest},
        "imageScanStatus": entry.get("imageScanStatus") or {
            "status": "COMPLETE", "description": "The scan was completed successfully."},
        "imageScanFindings": entry.get("imageScanFindings", CLEAN),
    })
