"""A private bucket for aurelius' own artifacts (the elb server bundle), created if missing.

Created the way the model bucket of template.yaml is: owner-enforced object ownership (no
ACLs), every public access block on, default encryption, versioning, and a policy that refuses
requests without TLS (S3 user guide, "Security best practices for Amazon S3"). An existing
bucket is used as it is: it may be someone's on purpose, so aurelius does not reconfigure it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from botocore.exceptions import ClientError

from aurelius.core.aws_errors import S3_ACCESS_DENIED, S3_NOT_FOUND, error_code

Printer = Callable[[str], None]


class BucketUnavailable(Exception):
    """The name is taken by another account, or the caller may not look at it."""


def tls_only_policy(bucket: str, partition: str = "aws") -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def bucket_exists(s3, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in S3_NOT_FOUND:
            return False
        if code in S3_ACCESS_DENIED:
            raise BucketUnavailable(
                f"bucket {bucket} exists but is not yours or you may not read it (403); choose another artifact_bucket name"
            ) from None
        raise
    return True


def ensure_private_bucket(s3, bucket: str, region: str | None, *, dry_run: bool = False, out: Printer = print) -> str:
    """Create ``bucket`` private, encrypted, versioned and TLS-only unless it exists.

    Returns "exists", "created" or "would create" (dry run: nothing is sent but the HeadBucket).
    """
    if bucket_exists(s3, bucket):
        return "exists"
    if dry_run:
        out(f"  would create bucket {bucket} (private, encrypted, versioned, TLS only)")
        return "would create"
    create: dict = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
    # us-east-1 is the one region that refuses a LocationConstraint naming itself.
    if region and region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    partition = (
        "aws-cn"
        if (region or "").startswith("cn-")
        else "aws-us-gov"
        if (region or "").startswith("us-gov-")
        else "aws"
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket, partition)))
    out(f"  created bucket {bucket} (private, encrypted, versioned, TLS only)")
    return "created"
