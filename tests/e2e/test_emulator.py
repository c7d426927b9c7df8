"""The emulator keeps the S3 semantics record-result rests on (local/agentbuild_local/s3fixes.py):
a legal hold on a version or key the bucket does not have is a 404 (moto alone answers 500).
The other fix there, atomic conditional writes, is staged as a race in local/test_stack.py.

Run: scripts/e2e.sh -k emulator
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import uid


def test_a_legal_hold_on_a_missing_version_or_key_is_a_404(stack):
    key = f"emulator/{uid()}.zip"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b"zip")
    hold = {"Status": "ON"}
    with pytest.raises(ClientError) as missing_version:
        stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=key, VersionId="v-from-before-a-restart",
                                       LegalHold=hold)
    with pytest.raises(ClientError) as missing_key:
        stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=f"{key}.gone", LegalHold=hold)
    for raised, code in ((missing_version, "NoSuchVersion"), (missing_key, "NoSuchKey")):
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert raised.value.response["Error"]["Code"] == code
    # The key itself is still held as asked.
    stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=key, LegalHold=hold)
    assert stack.s3.get_object_legal_hold(Bucket=stack.bucket, Key=key)["LegalHold"]["Status"] == "ON"
