"""Whether a model version has a signature object: presence only, never the signature's validity.

The layout is aurelius.core.signature_layout's: the model carries its sha256 in the metadata
``aurelius-sha256`` (read by the HeadObject that found the version, so no second read of the
model), and its signature is the sidecar object ``{model_key}.sig/{sha256}``. One HeadObject on
the sidecar says whether it exists; nothing is downloaded.

Presence is all the redeployer, ``aurelius status`` and ``aurelius doctor`` can check here: they
hold no trust material. The model server is the gate: it hashes the bytes it downloads and
verifies the bundle with the operator's trust before unpickling (docs/threat-model.md). Pure
boto3 (no ``model_signing`` import): the Lambda artifact stays small.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from botocore.exceptions import ClientError

from aurelius.core.aws_errors import S3_ACCESS_DENIED, S3_NOT_FOUND, error_code
from aurelius.core.model_version import ModelVersion
from aurelius.core.signature_layout import (
    SHA256_METADATA_KEY,
    LayoutError,
    sha256_from_metadata,
    signature_key,
    signature_prefix,
)


class Signature(enum.StrEnum):
    """What was found; the value is what ``--json`` carries."""

    SIGNED = "signed"  # the sidecar for the digest in the model's metadata exists
    NO_DIGEST = "no-digest"  # the model has no (valid) aurelius-sha256 metadata
    NO_SIGNATURE = "no-signature"  # no sidecar object for that digest
    UNREADABLE = "unreadable"  # HeadObject on the sidecar answered 403


@dataclass(frozen=True)
class SignatureStatus:
    state: Signature
    reason: str  # for people: what was found, what to do
    sha256: str | None = None  # the digest the model's metadata names
    key: str | None = None  # the sidecar key looked for

    @property
    def signed(self) -> bool:
        return self.state is Signature.SIGNED

    def as_dict(self) -> dict[str, str | bool | None]:
        return {"state": str(self.state), "signed": self.signed, "sha256": self.sha256, "key": self.key}


def signature_status(s3, version: ModelVersion) -> SignatureStatus:
    """Whether ``version`` has a signature object (one HeadObject on the sidecar at most).

    Raises only for unexpected AWS errors; a 403 is a state (UNREADABLE) naming the permission.
    """
    where = f"version {version.version_id} of {version.uri}"
    digest = sha256_from_metadata(version.metadata)
    if digest is None:
        return SignatureStatus(
            Signature.NO_DIGEST,
            f"{where} has no {SHA256_METADATA_KEY} metadata, so no signature can be found for it "
            "(upload with `aurelius publish`)",
        )
    try:
        key = signature_key(version.key, digest)
    except LayoutError as exc:
        return SignatureStatus(Signature.NO_SIGNATURE, f"{where}: {exc}", digest)
    sidecar = f"s3://{version.bucket}/{key}"
    try:
        s3.head_object(Bucket=version.bucket, Key=key)
    except ClientError as exc:
        code = error_code(exc)
        if code in S3_NOT_FOUND:
            return SignatureStatus(
                Signature.NO_SIGNATURE, f"{where}: no signature object {sidecar} (sha256 {digest})", digest, key
            )
        if code in S3_ACCESS_DENIED:
            return SignatureStatus(Signature.UNREADABLE, access_denied_reason(version, key), digest, key)
        raise
    return SignatureStatus(Signature.SIGNED, f"{where} has its signature object {sidecar}", digest, key)


def access_denied_reason(version: ModelVersion, key: str) -> str:
    """What a 403 on the sidecar's HeadObject means. HeadObject needs s3:GetObject; without
    s3:ListBucket a missing key answers 403 too
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions")."""
    pattern = f"arn:aws:s3:::{version.bucket}/{signature_prefix(version.key)}*"
    return (
        f"access denied: HeadObject on s3://{version.bucket}/{key} (the signature of version {version.version_id}) "
        f"needs s3:GetObject on {pattern} and s3:ListBucket on arn:aws:s3:::{version.bucket} "
        "(without s3:ListBucket a missing signature also answers 403)"
    )
