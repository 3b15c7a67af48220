"""The one reader of a botocore ClientError's code and message.

An error's code is the AWS error code ("ValidationError", "NoSuchKey") or, for operations
without a response body such as HeadObject and HeadBucket, the bare HTTP status ("404", "403").
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# The codes S3 answers for "no such bucket, key or version"; HeadObject and HeadBucket have no
# body, so they answer the bare HTTP status (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
S3_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"})
S3_ACCESS_DENIED = frozenset({"403", "AccessDenied", "Forbidden"})


def error_code(exc: ClientError) -> str:
    """The error code ("" when AWS sent none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The error message (the exception's text when AWS sent none)."""
    return str(exc.response.get("Error", {}).get("Message", exc))
