"""Fetch exactly the pinned model version from S3, check it, unpickle it.

SECURITY: ``pickle.loads`` runs code. This module loads only the configured bucket, key and
VersionId (GetObject with VersionId: never "latest"), verifies S3's stored checksum when there
is one, and records the sha256 of the bytes. None of that makes a pickle safe: whoever can
write to the model bucket can run code on the service. The role needs
``s3:GetObjectVersion`` on the key (GetObject with a VersionId checks that action).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from aurelius_server.checksum import ChecksumMismatch, StoredChecksum, stored_checksum, verify
from aurelius_server.config import S3Location

# What an S3 error code means for a pinned GetObject, in words an operator can act on.
_S3_REASONS = {
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "there is no object at that key",
    "NoSuchVersion": "that version of the object does not exist",
    "InvalidArgument": "S3 rejected the request (is the version id well formed?)",
    "MethodNotAllowed": "that version is a delete marker",
    "AccessDenied": "access denied (needs s3:GetObjectVersion; without s3:ListBucket a missing object also reads as access denied)",
    "403": "access denied (needs s3:GetObjectVersion)",
    "404": "the object or that version does not exist",
}


class ModelLoadError(Exception):
    """The pinned model could not be loaded. ``str()`` names the URI, the version and why."""

    def __init__(self, location: S3Location, version_id: str, reason: str):
        self.location, self.version_id, self.reason = location, version_id, reason
        super().__init__(f"cannot load model {location} version {version_id}: {reason}")


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    location: S3Location
    version_id: str
    sha256: str
    s3_checksum: StoredChecksum | None
    loaded_at: str
    size_bytes: int

    def describe(self) -> dict[str, Any]:
        """The GET /version document."""
        return {
            "model_s3_uri": str(self.location),
            "model_version_id": self.version_id,
            "sha256": self.sha256,
            "s3_checksum": self.s3_checksum.as_json() if self.s3_checksum else None,
            "loaded_at": self.loaded_at,
        }


def make_s3_client() -> Any:
    """Plain boto3: AWS_ENDPOINT_URL, AWS_REGION and the default credential chain apply."""
    return boto3.client(
        "s3",
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60),
    )


def load_model(location: S3Location, version_id: str, s3: Any = None) -> LoadedModel:
    """Download, verify and unpickle the pinned version. Raises ModelLoadError."""
    data, checksum = _fetch(s3 if s3 is not None else make_s3_client(), location, version_id)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        model = pickle.loads(data)  # runs code: see the module docstring
    except Exception as exc:
        raise ModelLoadError(location, version_id, f"unpickling failed: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(location, version_id, f"the unpickled {type(model).__name__} object has no callable predict()")
    loaded_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return LoadedModel(model, location, version_id, sha256, checksum, loaded_at, len(data))


def _fetch(s3: Any, location: S3Location, version_id: str) -> tuple[bytes, StoredChecksum | None]:
    def fail(reason: str) -> ModelLoadError:
        return ModelLoadError(location, version_id, reason)

    try:
        response = s3.get_object(
            Bucket=location.bucket, Key=location.key, VersionId=version_id, ChecksumMode="ENABLED"
        )
        data = response["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        reason = _S3_REASONS.get(code, f"S3 error {code}: {error.get('Message', exc)}")
        raise fail(f"{reason} [{code}]") from exc
    except FlexibleChecksumError as exc:  # botocore's own streaming check
        raise fail(f"checksum mismatch: {exc}") from exc
    except BotoCoreError as exc:
        raise fail(f"S3 request failed: {exc}") from exc

    returned_version = response.get("VersionId")
    if returned_version is not None and returned_version != version_id:
        raise fail(f"S3 returned version {returned_version} instead")
    expected_length = response.get("ContentLength")
    if expected_length is not None and expected_length != len(data):
        raise fail(f"truncated download: {len(data)} of {expected_length} bytes")

    checksum = stored_checksum(response)
    if checksum is not None:
        try:
            checksum = verify(checksum, data)
        except ChecksumMismatch as exc:
            raise fail(str(exc)) from exc
    return data, checksum
