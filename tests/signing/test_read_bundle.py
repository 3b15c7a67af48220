"""read_bundle: what the server sends to S3 for the sidecar, and how it reads the answers.

botocore's Stubber stands in for S3: it pins the exact request (bucket, sidecar key) and lets the
test answer with what moto cannot (a 403 for a missing key without s3:ListBucket).
"""

from __future__ import annotations

import hashlib
import io

import boto3
import pytest
from botocore.response import StreamingBody

from aurelius_server import signature
from tests.stubs import stubbed

DIGEST = hashlib.sha256(b"model").hexdigest()
SIDECAR = {"Bucket": "models-bucket", "Key": f"models/model.pkl.sig/{DIGEST}"}


@pytest.fixture
def s3():
    return boto3.client("s3", region_name="us-east-1")


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_the_sidecar_named_by_the_digest_is_read(s3):
    # Given the sidecar exists / When read / Then exactly that key is asked for and its body returned
    with stubbed(s3) as stub:
        stub.add_response("get_object", {"Body": body(b"{bundle}"), "ContentLength": 8}, SIDECAR)
        assert signature.read_bundle(s3, "models-bucket", "models/model.pkl", DIGEST) == b"{bundle}"


def test_no_sidecar_is_none(s3):
    with stubbed(s3) as stub:
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404, expected_params=SIDECAR)
        assert signature.read_bundle(s3, "models-bucket", "models/model.pkl", DIGEST) is None


def test_access_denied_is_unreadable_and_names_both_causes(s3):
    # Given S3 answering 403 (a missing key without s3:ListBucket, or no s3:GetObject on the prefix)
    with stubbed(s3) as stub:
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403, expected_params=SIDECAR)
        with pytest.raises(
            signature.SignatureUnreadable, match="no such signature, or the task role may not"
        ) as raised:
            signature.read_bundle(s3, "models-bucket", "models/model.pkl", DIGEST)
    assert "s3://models-bucket/models/model.pkl.sig/" in str(raised.value)


def test_an_oversized_sidecar_is_refused_from_its_length(s3):
    size = signature.MAX_BUNDLE_BYTES + 1
    with stubbed(s3) as stub:
        stub.add_response("get_object", {"Body": body(b"x"), "ContentLength": size}, SIDECAR)
        with pytest.raises(signature.SignatureMalformed, match=f"is {size} bytes"):
            signature.read_bundle(s3, "models-bucket", "models/model.pkl", DIGEST)
