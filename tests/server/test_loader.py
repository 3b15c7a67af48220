"""The loader fetches the pinned version in parallel byte ranges into a private temporary file,
verifies it from the file, unpickles from the file and deletes it (moto S3 on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading

import pytest
from boto3.s3.transfer import TransferConfig

from aurelius_server.config import parse_s3_uri
from aurelius_server.pinned_model import load_model
from aurelius_server.s3_download import ModelLoadError

from .toy_model import LinearModel

MIB = 1024 * 1024


class Ballast(LinearModel):
    """A LinearModel carrying ``size`` bytes, so that it spans several download ranges."""

    def __init__(self, size: int):
        super().__init__([2.0])
        self.ballast = os.urandom(size)


def ranged_requests(s3) -> list[dict]:
    """Every GetObject the client sends, with its Range and VersionId (botocore before-call)."""
    seen, lock = [], threading.Lock()

    def record(params, **_):
        with lock:
            seen.append({"Range": params.get("headers", {}).get("Range"), "query": params.get("query_string")})

    s3.meta.events.register("before-call.s3.GetObject", record)
    return seen


def test_a_large_model_is_downloaded_in_ranges_of_the_pinned_version_verified_and_deleted(s3, publish, tmp_path):
    # Given a 5 MiB model with a stored SHA256 checksum, and a newer version of the same key
    published = publish(Ballast(5 * MIB), ChecksumAlgorithm="SHA256")
    publish(LinearModel([999.0]))
    requests = ranged_requests(s3)
    config = TransferConfig(multipart_threshold=1 * MIB, multipart_chunksize=1 * MIB, max_concurrency=4)
    download_dir = tmp_path / "downloads"
    download_dir.mkdir()

    # When the loader loads the pinned version with 1 MiB ranges
    loaded = load_model(
        parse_s3_uri(published.uri), published.version_id, s3, transfer=config, directory=str(download_dir)
    )

    # Then it was fetched as several byte ranges, each of the pinned version
    ranges = [r for r in requests if r["Range"]]
    assert len(ranges) >= 5, requests
    assert all(r["query"].get("versionId") == published.version_id for r in requests)
    # And the bytes are exactly that version's: sha256 and S3's checksum verified, length recorded
    assert loaded.sha256 == hashlib.sha256(published.body).hexdigest()
    assert loaded.s3_checksum is not None and loaded.s3_checksum.verified is True
    assert loaded.size_bytes == len(published.body)
    # And the model is the pinned one (the newer version would predict 999 x)
    assert loaded.model.predict([[3.0]]) == [6.0]
    # And no download file is left behind
    assert list(download_dir.iterdir()) == []


def test_a_model_that_fails_to_unpickle_leaves_no_file_behind(publish, s3, tmp_path):
    # Given bytes that start like a pickle and are not one
    published = publish(b"\x80\x04 not a pickle at all")

    # When loaded into a download directory, it is refused (by the pickle scan, before unpickling)
    with pytest.raises(ModelLoadError, match="the pickle file could not be scanned: not a readable pickle stream"):
        load_model(parse_s3_uri(published.uri), published.version_id, s3, directory=str(tmp_path))

    # And with the scan in warn mode, by the unpickler itself
    with pytest.raises(ModelLoadError, match="loading the pickle file failed: UnpicklingError"):
        load_model(parse_s3_uri(published.uri), published.version_id, s3, scan_mode="warn", directory=str(tmp_path))

    # Then the directory is empty again
    assert list(tmp_path.iterdir()) == []


def test_the_object_user_metadata_travels_with_the_loaded_model(publish, s3):
    # Given a model uploaded with user metadata
    published = publish(LinearModel([1.0]), Metadata={"aurelius-smoke-expected": "[1.0]"})

    # When loaded / Then the metadata is available to the smoke test
    loaded = load_model(parse_s3_uri(published.uri), published.version_id, s3)
    assert loaded.metadata == {"aurelius-smoke-expected": "[1.0]"}
    assert pickle.loads(published.body).predict([[1.0]]) == loaded.model.predict([[1.0]])
