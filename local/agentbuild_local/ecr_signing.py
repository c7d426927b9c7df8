"""ECR's managed signing of the images the local stack pushes (issue 24), in AWS's shape.

On AWS, with a registry signing configuration (the template's RegistrySigning behind
ImageSigning=ENABLED) ECR signs each pushed image with AWS Signer: DescribeImageSigningStatus
answers one status per matching signing profile (IN_PROGRESS, COMPLETE, FAILED) and the
signature is an OCI referrer of the image's digest, listed by ListImageReferrers with
artifactType `application/vnd.cncf.notary.signature`. moto 5.2.5 has neither operation, so
both are added to its ECR here (`install_signing`), answering from what this module holds:

- by default nothing signs (like the template's default ImageSigning=DISABLED): no statuses;
- POST /ecr/signing on the injection endpoint queues `{"match": "<text of the image tag>",
  "status": "COMPLETE" | "IN_PROGRESS" | "FAILED", "signingProfileArn"?, "failureCode"?,
  "failureReason"?}`; the next pushed image whose tag contains `match` gets that status and,
  when COMPLETE, a signature referrer (its digest derived from the image's: stable, unique).
"""
from __future__ import annotations

import hashlib
import threading
from typing import Any

from .config import StackError

NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
PROFILE = "arn:aws:signer:{region}:{account}:/signing-profiles/agentbuild_local"
STATUSES = {"COMPLETE", "IN_PROGRESS", "FAILED"}
KEYS = {"match", "status", "signingProfileArn", "failureCode", "failureReason"}

_LOCK = threading.Lock()
_QUEUED: list[dict[str, Any]] = []
# (account, region, repository, digest) -> the signing status ECR keeps for that image.
_SIGNED: dict[tuple[str, str, str, str], dict[str, Any]] = {}


def add(entry: Any) -> int:
    """Queues one signing outcome; ValueError naming what is wrong."""
    if not isinstance(entry, dict) or not isinstance(entry.get("match"), str) or not entry["match"]:
        raise ValueError('signing takes {"match": "<tag text>", "status": "COMPLETE"|"IN_PROGRESS"|'
                         '"FAILED", "signingProfileArn"?, "failureCode"?, "failureReason"?}')
    if not set(entry) <= KEYS:
        raise ValueError(f"signing: unknown keys {sorted(set(entry) - KEYS)}")
    if entry.get("status") not in STATUSES:
        raise ValueError(f"signing: status must be one of {sorted(STATUSES)}")
    with _LOCK:
        _QUEUED.append(entry)
        return len(_QUEUED)


def clear() -> None:
    with _LOCK:
        _QUEUED.clear()
        _SIGNED.clear()


def signature_digest(image_digest: str) -> str:
    return "sha256:" + hashlib.sha256(f"notation-signature:{image_digest}".encode()).hexdigest()


def sign_on_push(account: str, region: str, repository: str, tag: str, digest: str) -> None:
    """What ECR's managed signing leaves for an image just pushed (when a test asked for it)."""
    with _LOCK:
        entry = next((e for e in _QUEUED if e["match"] in tag), None)
        if entry is None:
            return
        _QUEUED.remove(entry)
        status = {"status": entry["status"],
                  "signingProfileArn": entry.get("signingProfileArn")
                  or PROFILE.format(region=region, account=account)}
        if entry["status"] == "FAILED":
            status["failureCode"] = entry.get("failureCode", "SigningFailed")
            status["failureReason"] = entry.get("failureReason", "scripted failure")
        _SIGNED[(account, region, repository, digest)] = status


def _image(backend: Any, repository: str, digest: str, registry_id: str) -> None:
    """moto's own errors for a repository or image it does not hold."""
    from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException

    repo = backend.repositories.get(repository)
    if repo is None:
        raise RepositoryNotFoundException(repository, registry_id)
    if not any(i.image_digest == digest for i in repo.images):
        raise ImageNotFoundException(f"{{'imageDigest': '{digest}'}}", repository, registry_id)


def install_signing() -> None:
    """Adds the two operations to moto's ECR (refusing a moto that has its own by now)."""
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse

    for name in ("describe_image_signing_status", "list_image_referrers"):
        if hasattr(ECRResponse, name) and not getattr(getattr(ECRResponse, name), "_agentbuild", False):
            raise StackError(f"moto's ECR has its own {name} now: re-check local/agentbuild_local/ecr_signing.py")

    def describe_image_signing_status(self: Any) -> Any:
        repository = self._get_param("repositoryName")
        digest = (self._get_param("imageId") or {}).get("imageDigest", "")
        registry_id = self._get_param("registryId") or self.current_account
        _image(self.ecr_backend, repository, digest, registry_id)
        with _LOCK:
            status = _SIGNED.get((self.current_account, self.region, repository, digest))
        return ActionResult({"repositoryName": repository, "imageId": {"imageDigest": digest},
                             "registryId": registry_id,
                             "signingStatuses": [dict(status)] if status else []})

    def list_image_referrers(self: Any) -> Any:
        repository = self._get_param("repositoryName")
        digest = (self._get_param("subjectId") or {}).get("imageDigest", "")
        registry_id = self._get_param("registryId") or self.current_account
        _image(self.ecr_backend, repository, digest, registry_id)
        wanted = ((self._get_param("filter") or {}).get("artifactTypes")) or [NOTATION_SIGNATURE]
        with _LOCK:
            status = _SIGNED.get((self.current_account, self.region, repository, digest))
        referrers = []
        if status and status["status"] == "COMPLETE" and NOTATION_SIGNATURE in wanted:
            referrers.append({"digest": signature_digest(digest),
                              "mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "artifactType": NOTATION_SIGNATURE, "size": 1024,
                              "artifactStatus": "ACTIVE"})
        return ActionResult({"referrers": referrers})

    for fn in (describe_image_signing_status, list_image_referrers):
        fn._agentbuild = True  # type: ignore[attr-defined]
        setattr(ECRResponse, fn.__name__, fn)
