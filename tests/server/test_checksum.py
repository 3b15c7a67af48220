"""The loader's own check of S3's stored checksum, against values S3 (moto) computed."""

from __future__ import annotations

import builtins

import pytest

from aurelius_server import checksum
from aurelius_server.checksum import (
    ChecksumMismatch,
    StoredChecksum,
    compute,
    stored_checksum,
    verify,
)

DATA = b"the model bytes"


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME"])
def test_computes_the_checksum_s3_stores(s3, bucket, algorithm):
    if algorithm in ("CRC32C", "CRC64NVME"):
        pytest.importorskip("awscrt")
    # Given S3 stored a checksum of some bytes
    version_id = s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumAlgorithm=algorithm)["VersionId"]
    response = s3.get_object(Bucket=bucket, Key="k", VersionId=version_id, ChecksumMode="ENABLED")
    response["Body"].read()

    # When the server reads and recomputes it
    stored = stored_checksum(response)

    # Then both agree, and verify() marks it verified
    assert stored is not None and stored.algorithm == algorithm
    assert compute(algorithm, DATA) == stored.value
    assert verify(stored, DATA).verified is True


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_verify_raises_on_bytes_that_differ(algorithm):
    # Given a stored checksum of other bytes
    stored = StoredChecksum(algorithm, compute(algorithm, b"other bytes"))

    # When the received bytes are verified
    # Then it is a mismatch naming the algorithm
    with pytest.raises(ChecksumMismatch, match=f"checksum mismatch: S3 stored {algorithm}"):
        verify(stored, DATA)


def test_composite_checksum_of_a_multipart_upload_is_reported_unverified():
    # Given a composite (per-part) checksum, which cannot be recomputed from the whole object
    stored = StoredChecksum("SHA256", "Qm9ndXM=-3", "COMPOSITE")

    # When verified
    # Then it is kept, marked not verified, and not treated as a mismatch
    assert verify(stored, DATA) == StoredChecksum("SHA256", "Qm9ndXM=-3", "COMPOSITE", verified=False)


def test_crc64nvme_without_awscrt_is_reported_unverified(monkeypatch):
    # Given awscrt cannot be imported (the image installs boto3 only)
    real_import = builtins.__import__

    def no_awscrt(name, *args, **kwargs):
        if name.startswith("awscrt"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_awscrt)

    # When a CRC64NVME checksum is verified
    result = verify(StoredChecksum("CRC64NVME", "AAAAAAAAAAA="), DATA)

    # Then it is reported as not verified (never as verified)
    assert result.verified is False
    assert checksum.compute("CRC64NVME", DATA) is None


def test_stored_checksum_is_none_when_s3_returns_none():
    # Given a GetObject response without checksum fields
    # When read / Then there is no stored checksum
    assert stored_checksum({"ContentLength": 3, "VersionId": "v"}) is None
