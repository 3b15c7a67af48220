"""aurelius.scripts.buckets.ensure_private_bucket: what it sends (botocore Stubber), where moto cannot say.

moto accepts any LocationConstraint and never answers 403 for another account's bucket.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY

from aurelius.scripts.buckets import BucketUnavailable, ensure_private_bucket
from tests.stubs import stubbed


def test_outside_us_east_1_the_bucket_is_created_in_the_region_it_is_used_from():
    s3 = boto3.client("s3", region_name="eu-west-1")
    with stubbed(s3) as stub:
        stub.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
        stub.add_response(
            "create_bucket",
            {},
            {
                "Bucket": "b-eu",
                "ObjectOwnership": "BucketOwnerEnforced",
                "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"},
            },
        )
        for method in (
            "put_public_access_block",
            "put_bucket_encryption",
            "put_bucket_versioning",
            "put_bucket_policy",
        ):
            stub.add_response(method, {}, {"Bucket": "b-eu", **_rest(method)})
        assert ensure_private_bucket(s3, "b-eu", "eu-west-1", out=lambda line: None) == "created"
        stub.assert_no_pending_responses()


def _rest(method: str) -> dict:
    return {
        "put_public_access_block": {"PublicAccessBlockConfiguration": ANY},
        "put_bucket_encryption": {"ServerSideEncryptionConfiguration": ANY},
        "put_bucket_versioning": {"VersioningConfiguration": {"Status": "Enabled"}},
        "put_bucket_policy": {"Policy": ANY},
    }[method]


def test_a_bucket_name_owned_elsewhere_stops_with_a_clear_error_and_creates_nothing():
    s3 = boto3.client("s3", region_name="us-east-1")
    with stubbed(s3) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(BucketUnavailable, match="choose another artifact_bucket"):
            ensure_private_bucket(s3, "taken", "us-east-1")
        stub.assert_no_pending_responses()  # and no create_bucket was sent (the Stubber would refuse it)


def test_an_existing_bucket_is_left_as_it_is():
    s3 = boto3.client("s3", region_name="us-east-1")
    with stubbed(s3) as stub:
        stub.add_response("head_bucket", {}, {"Bucket": "mine"})
        assert ensure_private_bucket(s3, "mine", "us-east-1") == "exists"
