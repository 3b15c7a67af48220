"""`aurelius publish` uploads exactly what the model server reads and verifies (issue 17 items 2, 6).

moto stands in for S3: the server's own reader (read_bundle, under the digest the server would
compute) finds the sidecar publish wrote, and the server's verify_digest accepts it with the
operator's trust, with real cryptography; a trust that names another key refuses it.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from aurelius import cli
from aurelius_server.signature import SignerUntrusted, parse_trust, read_bundle, verify_digest
from tests.helpers import BUCKET, KEY

from .conftest import sha256_of
from .material import key_trust


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3


def test_the_server_finds_and_accepts_the_signature_publish_uploaded(bucket, model, key, other_key, capsys):
    # Given an environment with no service stack yet (signing then is the publisher's choice)
    # When the model is published with a key
    code = cli.main(["publish", "-e", "local", str(model), "--key", str(key.private_key)])
    assert code == 0, capsys.readouterr().err
    # Then the server, hashing the bytes it downloads, finds the signature under that digest
    data = bucket.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    assert data == model.read_bytes()
    digest = sha256_of(model)
    bundle = read_bundle(bucket, BUCKET, KEY, digest)
    assert bundle is not None
    # and accepts it with the operator's trust (the publisher's public key) ...
    verified = verify_digest(digest, bundle, parse_trust(key_trust(key.public_key)))
    assert verified.sha256 == digest
    # ... but not with a trust that names another key
    with pytest.raises(SignerUntrusted):
        verify_digest(digest, bundle, parse_trust(key_trust(other_key.public_key)))
