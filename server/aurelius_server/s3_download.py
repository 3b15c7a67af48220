"""Download exactly the pinned model version from S3, hashing it in the same pass.

1. HeadObject with the VersionId and ``ChecksumMode=ENABLED``: the size, S3's stored
   checksum, the user metadata (smoke test expectations), and the version S3 answers for.
2. Download that version in parallel byte ranges (s3transfer, ``TransferConfig`` below) to a
   private temporary file (mode 0600, in MODEL_DOWNLOAD_DIR or the system temp directory).
   Memory stays bounded by the chunks in flight, not the model's size.
3. Read the file once: its length must be the size S3 announced (else "truncated"); sha256
   and S3's stored checksum are computed in the same pass (a mismatch is refused).
4. ``download`` yields a ``Downloaded`` (path, sha256, size, S3 metadata) and deletes the file
   when the caller is done with it (``pinned_model`` deserialises it in between).

The role needs ``s3:GetObjectVersion`` on the key (GetObject and HeadObject with a VersionId
check that action).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from aurelius_server.checksum import (
    ChecksumMismatch,
    Running,
    StoredChecksum,
    stored_checksum,
    verify_running,
)
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

MIB = 1024 * 1024
# Ranged download: 8 MiB parts (s3transfer's default), 8 at a time, each on its own connection
# (the client's pool is sized for it). At most 10 pieces of 256 KiB wait for the file write
# (s3transfer's default queue is 100): memory in flight stays a few MiB whatever the model's size.
TRANSFER = TransferConfig(
    multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8, max_io_queue=10, use_threads=True
)
READ_CHUNK = MIB


class ModelLoadError(Exception):
    """The pinned model could not be loaded. ``str()`` names the URI, the version and why;
    ``code``, when set, is a short stable name for the cause (``signature_missing``, ``pickle_refused``)."""

    def __init__(self, location: S3Location, version_id: str, reason: str, code: str | None = None):
        self.location, self.version_id, self.reason, self.code = location, version_id, reason, code
        super().__init__(f"cannot load model {location} version {version_id}: {reason}")


@dataclass(frozen=True)
class Downloaded:
    """The pinned version's bytes, on disk while ``download``'s block runs, and what S3 said."""

    path: str
    location: S3Location
    version_id: str
    sha256: str  # hex, of exactly the bytes in ``path``
    size_bytes: int
    s3_checksum: StoredChecksum | None
    metadata: dict[str, str] = field(default_factory=dict)  # the object's S3 user metadata


def make_s3_client() -> Any:
    """Plain boto3: AWS_ENDPOINT_URL, AWS_REGION and the default credential chain apply."""
    return boto3.client(
        "s3",
        config=BotoConfig(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=max(10, TRANSFER.max_request_concurrency),
        ),
    )


@contextmanager
def download(
    location: S3Location,
    version_id: str,
    s3: Any = None,
    transfer: TransferConfig = TRANSFER,
    directory: str | None = None,
) -> Iterator[Downloaded]:
    """Download and verify the pinned version; the file is deleted when the block ends.

    Raises ModelLoadError.
    """
    s3 = s3 if s3 is not None else make_s3_client()
    head = _head(s3, location, version_id)
    directory = directory or os.environ.get("MODEL_DOWNLOAD_DIR") or None
    try:
        handle = tempfile.NamedTemporaryFile(prefix="aurelius-model-", dir=directory)  # 0600, deleted on close
    except OSError as exc:
        raise ModelLoadError(
            location, version_id, f"cannot create the download file in {directory or tempfile.gettempdir()}: {exc}"
        ) from exc
    with handle:
        _download(s3, location, version_id, handle, transfer)
        sha256, checksum, size = _verify(location, version_id, handle, head)
        yield Downloaded(handle.name, location, version_id, sha256, size, checksum, dict(head.get("Metadata") or {}))


def _head(s3: Any, location: S3Location, version_id: str) -> dict[str, Any]:
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key, VersionId=version_id, ChecksumMode="ENABLED")
    except ClientError as exc:
        raise ModelLoadError(location, version_id, _explain(s3, location, version_id, exc)) from exc
    except BotoCoreError as exc:
        raise ModelLoadError(location, version_id, f"S3 request failed: {exc}") from exc
    returned_version = head.get("VersionId")
    if returned_version is not None and returned_version != version_id:
        raise ModelLoadError(location, version_id, f"S3 returned version {returned_version} instead")
    return head


def _explain(s3: Any, location: S3Location, version_id: str, exc: ClientError) -> str:
    """Why S3 refused. A HEAD answer has no body, so "404" cannot say whether the bucket, the key
    or the version is missing; a one-byte GET of the same version returns S3's error code."""
    code = _code(exc)
    if code in ("400", "404"):
        try:
            s3.get_object(Bucket=location.bucket, Key=location.key, VersionId=version_id, Range="bytes=0-0")
        except ClientError as detail:
            exc, code = detail, _code(detail)
        except BotoCoreError:
            pass
    error = exc.response.get("Error", {})
    reason = _S3_REASONS.get(code, f"S3 error {code}: {error.get('Message', exc)}")
    return f"{reason} [{code}]"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


def _download(s3: Any, location: S3Location, version_id: str, handle: IO[bytes], transfer: TransferConfig) -> None:
    try:
        s3.download_fileobj(
            Bucket=location.bucket,
            Key=location.key,
            Fileobj=handle,
            ExtraArgs={"VersionId": version_id},
            Config=transfer,
        )
    except ClientError as exc:
        raise ModelLoadError(location, version_id, _explain(s3, location, version_id, exc)) from exc
    except FlexibleChecksumError as exc:  # botocore's own streaming check
        raise ModelLoadError(location, version_id, f"checksum mismatch: {exc}") from exc
    except (BotoCoreError, OSError) as exc:
        raise ModelLoadError(location, version_id, f"S3 download failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # s3transfer wraps some failures (e.g. a range that came back short)
        raise ModelLoadError(location, version_id, f"S3 download failed: {type(exc).__name__}: {exc}") from exc


def _verify(
    location: S3Location, version_id: str, handle: IO[bytes], head: dict[str, Any]
) -> tuple[str, StoredChecksum | None, int]:
    """One pass over the downloaded file: length, sha256, S3's stored checksum."""
    handle.flush()
    size = os.fstat(handle.fileno()).st_size
    expected = head.get("ContentLength")
    if expected is not None and expected != size:
        raise ModelLoadError(location, version_id, f"truncated download: {size} of {expected} bytes")
    stored = stored_checksum(head)
    sha256 = hashlib.sha256()
    running = Running(stored.algorithm) if stored is not None and not stored.composite else None
    handle.seek(0)
    while chunk := handle.read(READ_CHUNK):
        sha256.update(chunk)
        if running is not None:
            running.update(chunk)
    checksum = stored
    if stored is not None:
        try:
            checksum = verify_running(stored, running or Running(stored.algorithm), size)
        except ChecksumMismatch as exc:
            raise ModelLoadError(location, version_id, str(exc)) from exc
    return sha256.hexdigest(), checksum, size
