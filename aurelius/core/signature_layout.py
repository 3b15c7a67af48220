"""Where a model's signature lives in S3, and how the model carries its own sha256.

The layout (docs/threat-model.md explains why):

- the signature of a model is a sidecar object keyed by the model's sha256:
  ``{model_key}.sig/{sha256hex}``, e.g. ``models/model.pkl.sig/9f86d0...``. Its body is the
  OpenSSF model signing bundle (a Sigstore bundle, JSON) for exactly those bytes;
- it is written BEFORE the model, so that the model's ObjectCreated event can never arrive
  before its signature;
- the model is uploaded with the user metadata ``aurelius-sha256: <hex>`` and the S3 checksum
  ``ChecksumSHA256`` (S3 rejects the upload when the bytes do not match it:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).

Consequences. The model server hashes the bytes it downloaded and looks the signature up under
the digest it computed itself, never under a digest someone wrote: a tampered model finds no
signature, or one for other bytes. The redeployer checks presence without downloading: HeadObject
on the model (its metadata names the digest) and HeadObject on the sidecar. A new upload of the
same bytes reuses the same signature; an upload of other bytes needs its own.

This module is the one place for these names. It is pure (standard library only) because the
Lambda core imports it; the model server cannot import ``aurelius`` (it ships alone), so it owns
``aurelius_server.signature.signature_key`` and a test asserts both compute the same key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

# S3 user metadata key (sent as the header x-amz-meta-aurelius-sha256; boto3 returns it in
# HeadObject's ``Metadata`` without the prefix, lower-cased).
SHA256_METADATA_KEY = "aurelius-sha256"
SIGNATURE_INFIX = ".sig/"
# S3 object keys are at most 1024 bytes of UTF-8
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
MAX_KEY_BYTES = 1024

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class LayoutError(ValueError):
    """A digest or key that cannot name a signature object."""


def check_sha256_hex(sha256_hex: str) -> str:
    """``sha256_hex`` itself when it is 64 lower-case hex digits; LayoutError otherwise."""
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.match(sha256_hex):
        raise LayoutError(f"{sha256_hex!r} is not a sha256 digest (64 lower-case hex digits)")
    return sha256_hex


def signature_key(model_key: str, sha256_hex: str) -> str:
    """The key of the signature object for the bytes with this sha256 at ``model_key``."""
    check_sha256_hex(sha256_hex)
    if not model_key:
        raise LayoutError("the model key is empty")
    key = f"{model_key}{SIGNATURE_INFIX}{sha256_hex}"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise LayoutError(
            f"the signature key for {model_key!r} would be longer than {MAX_KEY_BYTES} bytes: "
            f"use a model key of at most {MAX_KEY_BYTES - len(SIGNATURE_INFIX) - 64} bytes"
        )
    return key


def signature_prefix(model_key: str) -> str:
    """The prefix under which every signature of ``model_key`` lives (for lifecycle rules, IAM)."""
    return f"{model_key}{SIGNATURE_INFIX}"


def sha256_from_metadata(metadata: Mapping[str, str] | None) -> str | None:
    """The model's sha256 from HeadObject's ``Metadata``; None when absent or not a digest."""
    value = (metadata or {}).get(SHA256_METADATA_KEY)
    if value is None:
        return None
    value = value.strip().lower()
    return value if _SHA256_HEX.match(value) else None


def checksum_sha256(sha256_hex: str) -> str:
    """S3's ``ChecksumSHA256`` value (base64 of the 32 raw bytes) for a hex digest."""
    return base64.b64encode(bytes.fromhex(check_sha256_hex(sha256_hex))).decode("ascii")


def sha256_hex_from_checksum(checksum: str) -> str | None:
    """The hex digest for S3's ``ChecksumSHA256`` value; None for a composite or malformed value."""
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None  # composite checksums end in "-<parts>" and are not base64
    return raw.hex() if len(raw) == 32 else None
