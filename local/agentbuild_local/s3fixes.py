"""Two places where moto's S3 (MOTO_VERSION; signatures checked first) is not S3, both on paths
the pipeline's guarantees rest on:

* A conditional PutObject (`If-Match`, `If-None-Match: *`) checks the precondition and then
  writes, with nothing holding the key in between: two writers that read the same ETag can both
  pass the check and both write, the later one silently replacing the earlier. S3 applies a
  conditional write atomically (one of them gets 412). Every read-modify-write of a record,
  latest.json or a lock relies on that; seen here as a late phase-change progress write putting
  back a RUNNING record over record-result's final one. Fix: PutObject runs one at a time.
* PutObjectLegalHold on a key or version the bucket does not have fails with HTTP 500 (an
  AttributeError on None); S3 answers 404 NoSuchKey / NoSuchVersion, which record-result takes as
  "nothing to hold" (S3Store::hold_latest). Seen when a latest.json restored from .local/s3 names
  a version id from before the restart: record-result retried on the 500s.
"""
from __future__ import annotations

import threading
from typing import Any

from .config import checked_originals

_ORIGINALS: dict[str, Any] = {}
_PUT = threading.Lock()


def install_s3_fixes() -> None:
    from moto.s3.exceptions import MissingKey, MissingVersion
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    checked_originals(_ORIGINALS, {
        (S3Response, "put_object"): "(self) -> tuple[int, dict[str, typing.Any], str | bytes]",
        (S3Backend, "put_object_legal_hold"): "(self, bucket_name: 'str', key_name: 'str', "
        "version_id: 'str | None', legal_hold_status: 'dict[str, Any]') -> 'None'",
    }, "local/agentbuild_local/s3fixes.py")
    put_object = _ORIGINALS["put_object"]
    put_object_legal_hold = _ORIGINALS["put_object_legal_hold"]

    def put_object_atomically(self: Any) -> Any:
        # Bodies are read before this; only the check and the write are serialized. (The stack
        # configures no S3 notifications: one that ran a writer in-line would wait here.)
        with _PUT:
            return put_object(self)

    def put_legal_hold_or_404(self: Any, bucket_name: str, key_name: str, version_id: str | None,
                              legal_hold_status: dict[str, Any]) -> None:
        if self.get_object(bucket_name, key_name, version_id=version_id) is None:
            if version_id is not None:
                raise MissingVersion(key=key_name, version_id=version_id)
            raise MissingKey(key=key_name)
        put_object_legal_hold(self, bucket_name, key_name, version_id, legal_hold_status)

    S3Response.put_object = put_object_atomically
    S3Backend.put_object_legal_hold = put_legal_hold_or_404
