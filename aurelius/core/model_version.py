"""The model's current S3 version: the only "what is wanted" in aurelius.

HeadObject is strongly consistent (aws.md): right after a PUT it returns that PUT's version.
Nothing here downloads or unpickles the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError


class ModelMissing(Exception):
    """No object at the model key (never uploaded, or deleted)."""


class VersioningDisabled(Exception):
    """The bucket returns no version id: pinning a version is impossible."""


@dataclass(frozen=True)
class ModelVersion:
    bucket: str
    key: str
    version_id: str
    size: int
    last_modified: datetime | None = None

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
        code = str(exc.response.get("Error", {}).get("Code", ""))
        # HeadObject has no body, so errors come as bare HTTP codes; a malformed VersionId is a
        # 400 (a 400 without one is some other fault and is raised).
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion") or (code == "400" and version_id):
            what = f"version {version_id} of " if version_id else ""
            raise ModelMissing(f"no {what}model object at s3://{bucket}/{key}") from None
        raise
    found = head.get("VersionId")
    if not found or found == "null":
        raise VersioningDisabled(
            f"s3://{bucket}/{key} has no version id: turn on versioning on bucket {bucket} "
            "(aurelius pins every deploy to an S3 VersionId)"
        )
    return ModelVersion(bucket, key, found, int(head.get("ContentLength", 0)), head.get("LastModified"))
