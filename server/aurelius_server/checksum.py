"""S3's stored checksum of the model object, verified again over the bytes we received.

GetObject with ``ChecksumMode=ENABLED`` returns the checksum S3 stored at upload, if any
(``ChecksumSHA256``, ``ChecksumCRC32``, ...). botocore already validates some of these while
streaming; we check again here over the exact bytes we are about to unpickle, so the guarantee
does not depend on botocore's version or on which optional packages are installed.

SHA256, SHA1 and CRC32 are computed with the standard library. CRC32C and CRC64NVME need
``awscrt`` (the ``boto3[crt]`` extra); without it they are reported as not verified, not
as verified. A composite checksum (multipart upload, value ends in ``-<parts>``) covers the
parts, not the whole object, so it cannot be recomputed from the bytes: also not verified.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

# When S3 returns several, check the first one in this order.
ALGORITHMS = ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME")


class ChecksumMismatch(Exception):
    """The bytes received do not match the checksum S3 stored for them."""


@dataclass(frozen=True)
class StoredChecksum:
    algorithm: str
    value: str
    type: str | None = None  # FULL_OBJECT, COMPOSITE, or None when S3 does not say
    verified: bool = False

    @property
    def composite(self) -> bool:
        return self.type == "COMPOSITE" or "-" in self.value  # base64 has no "-"

    def as_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "value": self.value, "type": self.type, "verified": self.verified}


def stored_checksum(get_object_response: Mapping[str, Any]) -> StoredChecksum | None:
    """The checksum S3 returned with GetObject, or None when it returned none."""
    for algorithm in ALGORITHMS:
        value = get_object_response.get(f"Checksum{algorithm}")
        if value:
            return StoredChecksum(algorithm, value, get_object_response.get("ChecksumType"))
    return None


def _digest(name: str) -> Callable[[bytes], bytes]:
    return lambda data: hashlib.new(name, data).digest()


def _crt(name: str, width: int) -> Callable[[bytes], bytes] | None:
    try:
        from awscrt import checksums  # optional: boto3[crt]
    except ImportError:
        return None
    function = getattr(checksums, name, None)
    if function is None:
        return None
    return lambda data: function(data).to_bytes(width, "big")


def _calculator(algorithm: str) -> Callable[[bytes], bytes] | None:
    if algorithm == "SHA256":
        return _digest("sha256")
    if algorithm == "SHA1":
        return _digest("sha1")
    if algorithm == "CRC32":
        return lambda data: zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return _crt("crc32c", 4)
    if algorithm == "CRC64NVME":
        return _crt("crc64nvme", 8)
    return None


def compute(algorithm: str, data: bytes) -> str | None:
    """The base64 checksum S3 would store for ``data``, or None if it cannot be computed here."""
    calculate = _calculator(algorithm)
    if calculate is None:
        return None
    return base64.b64encode(calculate(data)).decode("ascii")


def verify(stored: StoredChecksum, data: bytes) -> StoredChecksum:
    """Return ``stored`` marked verified, or unverified when it cannot be recomputed here.

    Raises ChecksumMismatch when it can be recomputed and differs.
    """
    if stored.composite:
        return replace(stored, verified=False)
    actual = compute(stored.algorithm, data)
    if actual is None:
        return replace(stored, verified=False)
    if actual != stored.value:
        raise ChecksumMismatch(
            f"checksum mismatch: S3 stored {stored.algorithm} {stored.value}, "
            f"the {len(data)} bytes received have {actual}"
        )
    return replace(stored, verified=True)


class Running:
    """A checksum computed piece by piece (a downloaded file read in chunks)."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm.lower()) if algorithm in ("SHA256", "SHA1") else None
        self._crc = 0
        self._crt = _crt_running(algorithm) if algorithm in ("CRC32C", "CRC64NVME") else None
        self.available = self._hash is not None or algorithm == "CRC32" or self._crt is not None

    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        elif self.algorithm == "CRC32":
            self._crc = zlib.crc32(data, self._crc)
        elif self._crt is not None:
            self._crc = self._crt(data, self._crc)

    def value(self) -> str | None:
        """The base64 value S3 would store, or None when it cannot be computed here."""
        if self._hash is not None:
            return base64.b64encode(self._hash.digest()).decode("ascii")
        width = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}.get(self.algorithm)
        if width is None or not self.available:
            return None
        return base64.b64encode(self._crc.to_bytes(width, "big")).decode("ascii")


def _crt_running(algorithm: str) -> Callable[[bytes, int], int] | None:
    try:
        from awscrt import checksums  # optional: boto3[crt]
    except ImportError:
        return None
    return getattr(checksums, algorithm.lower(), None)


def verify_running(stored: StoredChecksum, running: Running, size: int) -> StoredChecksum:
    """``verify`` for a checksum computed piece by piece over ``size`` bytes."""
    if stored.composite:
        return replace(stored, verified=False)
    actual = running.value()
    if actual is None:
        return replace(stored, verified=False)
    if actual != stored.value:
        raise ChecksumMismatch(
            f"checksum mismatch: S3 stored {stored.algorithm} {stored.value}, the {size} bytes received have {actual}"
        )
    return replace(stored, verified=True)
