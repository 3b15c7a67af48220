"""The server loads exactly the pinned S3 version and says which one it serves."""

from __future__ import annotations

import hashlib
import pickle

import boto3
import pytest
from botocore.config import Config as BotoConfig

from .helpers import Published, call
from .toy_model import LinearModel

INSTANCES = [[1.0, 2.0], [3.0, 4.0]]


def test_serves_the_pinned_version_when_a_newer_version_exists(publish, start_service):
    # Given version 1 is pinned and version 2 of the same key was uploaded after it
    v1 = publish(LinearModel([1.0, 1.0], bias=0.0))
    v2 = publish(LinearModel([1.0, 1.0], bias=1000.0))
    assert v1.version_id != v2.version_id

    # When the server starts with version 1 pinned
    service = start_service(v1)

    # Then /version names version 1 and the sha256 of version 1's bytes
    version = call(service.port, "GET", "/version")
    assert version.status == 200
    assert version.json["model_s3_uri"] == v1.uri
    assert version.json["model_version_id"] == v1.version_id
    assert version.json["sha256"] == hashlib.sha256(v1.body).hexdigest()
    assert version.json["loaded_at"].endswith("Z")
    # And predictions come from version 1 (version 2 would add 1000)
    predicted = call(service.port, "POST", "/predict", {"instances": INSTANCES})
    assert predicted.status == 200
    assert predicted.json == {"predictions": [3.0, 7.0]}


def test_can_pin_the_newer_version_too(publish, start_service):
    # Given two versions of the model
    publish(LinearModel([1.0, 1.0], bias=0.0))
    v2 = publish(LinearModel([1.0, 1.0], bias=1000.0))

    # When version 2 is pinned
    service = start_service(v2)

    # Then version 2 is what answers
    assert call(service.port, "GET", "/version").json["model_version_id"] == v2.version_id
    assert call(service.port, "POST", "/predict", {"instances": INSTANCES}).json == {"predictions": [1003.0, 1007.0]}


def test_health_is_503_while_loading_and_200_once_the_model_is_loaded(publish, start_service):
    # Given a server that has bound its port but not loaded the model yet
    v1 = publish(LinearModel([1.0]))
    service = start_service(v1, load=False)

    # Then /health answers 503 (and /version, /predict say the model is not loaded)
    health = call(service.port, "GET", "/health")
    assert (health.status, health.json) == (503, {"status": "loading"})
    assert call(service.port, "GET", "/version").status == 503
    not_loaded = call(service.port, "POST", "/predict", {"instances": [[1.0]]})
    assert (not_loaded.status, not_loaded.json["error"]) == (503, "model_not_loaded")

    # When the model has loaded
    service.load()

    # Then /health answers 200
    health = call(service.port, "GET", "/health")
    assert (health.status, health.json) == (200, {"status": "ok"})


@pytest.mark.parametrize("algorithm", ["SHA256", "CRC32"])
def test_version_reports_the_s3_checksum_it_verified(publish, start_service, algorithm):
    # Given a model uploaded with a stored checksum
    v1 = publish(LinearModel([1.0]), ChecksumAlgorithm=algorithm)

    # When the server loads it
    service = start_service(v1)

    # Then /version shows S3's checksum, verified over the downloaded bytes
    checksum = call(service.port, "GET", "/version").json["s3_checksum"]
    assert checksum["algorithm"] == algorithm
    assert checksum["verified"] is True
    assert checksum["value"]


def test_version_reports_a_null_s3_checksum_when_s3_stored_none(aws_env, bucket, start_service):
    # Given a model uploaded without any checksum (the client sends none, S3 stores none)
    plain = boto3.client("s3", config=BotoConfig(request_checksum_calculation="when_required"))
    body = pickle.dumps(LinearModel([1.0]))
    version_id = plain.put_object(Bucket=bucket, Key="models/plain.pkl", Body=body)["VersionId"]

    # When the server loads it
    service = start_service(Published(f"s3://{bucket}/models/plain.pkl", version_id, body))

    # Then s3_checksum is null and the sha256 is still recorded
    version = call(service.port, "GET", "/version").json
    assert version["s3_checksum"] is None
    assert version["sha256"] == hashlib.sha256(body).hexdigest()
