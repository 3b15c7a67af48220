"""The model's current S3 version: the only "what is wanted" in aurelius.

HeadObject is strongly consistent (docs/aws.md): right after a PUT it returns that PUT's version.
Nothing here downloads or unpickles the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import ClientError

from aurelius.core.aws_errors import S3_ACCESS_DENIED, S3_NOT_FOUND, error_code


class ModelMissing(Exception):
    """No object at the model key (never uploaded, or deleted)."""


class VersioningDisabled(Exception):
    """The bucket returns no version id: pinning a version is impossible."""


class ModelAccessDenied(ClientError):
    """HeadObject answered 403: the caller's policy misses an action; str() names it and the ARN.

    Still a ClientError, so a caller that only knows AWS errors (the management scripts) reports
    it as one; the redeployer turns it into an alarm instead of an error Lambda would retry.
    """

    def __init__(self, error: ClientError, reason: str):
        super().__init__(error.response, error.operation_name)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ModelVersion:
    bucket: str
    key: str
    version_id: str
    size: int
    last_modified: datetime | None = None
    # HeadObject's user metadata (keys lower-case, without x-amz-meta-): the model's sha256 is
    # there (aurelius.core.signature_layout), so checking a signature needs no second HeadObject.
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def current_model_version(s3, bucket: str, key: str, version_id: str | None = None) -> ModelVersion:
    """HeadObject on the model key (a given version, or the current one)."""
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        head = s3.head_object(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        # HeadObject has no body, so errors come as bare HTTP codes; a malformed VersionId is a
        # 400 (a 400 without one is some other fault and is raised).
        if code in S3_NOT_FOUND or (code == "400" and version_id):
            what = f"version {version_id} of " if version_id else ""
            raise ModelMissing(f"no {what}model object at s3://{bucket}/{key}") from None
        if code in S3_ACCESS_DENIED:
            raise ModelAccessDenied(exc, access_denied_reason(bucket, key, version_id)) from None
        raise
    found = head.get("VersionId")
    if not found or found == "null":
        raise VersioningDisabled(
            f"s3://{bucket}/{key} has no version id: turn on versioning on bucket {bucket} "
            "(aurelius pins every deploy to an S3 VersionId)"
        )
    return ModelVersion(
        bucket,
        key,
        found,
        int(head.get("ContentLength", 0)),
        head.get("LastModified"),
        dict(head.get("Metadata") or {}),
    )


def access_denied_reason(bucket: str, key: str, version_id: str | None) -> str:
    """What a 403 on HeadObject means and which permissions fix it.

    HeadObject needs s3:GetObject (s3:GetObjectVersion with a VersionId); without s3:ListBucket on
    the bucket a missing key answers 403 instead of 404
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
    """
    action = "s3:GetObjectVersion" if version_id else "s3:GetObject"
    return (
        f"access denied: HeadObject on s3://{bucket}/{key} needs {action} on arn:aws:s3:::{bucket}/{key} "
        f"and s3:ListBucket on arn:aws:s3:::{bucket} (without s3:ListBucket a missing key also answers 403)"
    )
