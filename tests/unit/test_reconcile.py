"""The reconcile decisions, with botocore Stubber.

moto cannot produce *_IN_PROGRESS, UPDATE_ROLLBACK_COMPLETE after a circuit-breaker rollback,
UPDATE_ROLLBACK_FAILED or a stack going busy between two calls (../shared/notes/moto.md), so
these tests pin down what the code *sends* for each state instead.
"""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from aurelius.core.reconcile import Action, Target, reconcile, request_token, version_digest

STACK = "aurelius-service-stack-local-demo"
BUCKET, KEY = "aurelius-models-local-demo", "models/model.pkl"
URI = f"s3://{BUCKET}/{KEY}"
ROLE = "arn:aws:iam::123456789012:role/aurelius-cfn"
TARGET = Target(STACK, BUCKET, KEY, ROLE)
NOW = 1_795_600_000.0


def stack(status: str, version: str, uri: str = URI, extra: dict | None = None) -> dict:
    params = {"ClusterName": "c", "ContainerImage": "img:1", "ModelS3Uri": uri, "ModelVersionId": version, **(extra or {})}
    return {
        "StackName": STACK,
        "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/x",
        "StackStatus": status,
        "CreationTime": datetime(2026, 11, 1, tzinfo=timezone.utc),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        "Capabilities": ["CAPABILITY_IAM"],
    }


class Aws:
    """Stubbed S3 and CloudFormation clients with helpers for the expected calls."""

    def __init__(self):
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.cfn = boto3.client("cloudformation", region_name="us-east-1")
        self.s3_stub, self.cfn_stub = Stubber(self.s3), Stubber(self.cfn)

    def head(self, version: str = "v2", size: int = 100):
        self.s3_stub.add_response(
            "head_object",
            {"VersionId": version, "ContentLength": size, "LastModified": datetime(2026, 11, 26, tzinfo=timezone.utc)},
            {"Bucket": BUCKET, "Key": KEY},
        )

    def head_error(self, code: str, status: int):
        self.s3_stub.add_client_error("head_object", service_error_code=code, http_status_code=status)

    def describe(self, *stacks: dict):
        self.cfn_stub.add_response("describe_stacks", {"Stacks": list(stacks)}, {"StackName": STACK})

    def describe_missing(self):
        self.cfn_stub.add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", http_status_code=400
        )

    def events(self, token: str | None):
        event = {
            "StackId": "x",
            "EventId": "e1",
            "StackName": STACK,
            "LogicalResourceId": STACK,
            "ResourceType": "AWS::CloudFormation::Stack",
            "ResourceStatus": "UPDATE_IN_PROGRESS",
            "Timestamp": datetime(2026, 11, 26, tzinfo=timezone.utc),
        }
        if token:
            event["ClientRequestToken"] = token
        self.cfn_stub.add_response("describe_stack_events", {"StackEvents": [event]}, {"StackName": STACK})

    def update(self, expected: dict | None = None):
        self.cfn_stub.add_response("update_stack", {"StackId": "x"}, expected or ANY_UPDATE)

    def update_error(self, message: str):
        self.cfn_stub.add_client_error("update_stack", "ValidationError", message, http_status_code=400)

    def run(self, **kwargs):
        with self.s3_stub, self.cfn_stub:
            result = reconcile(TARGET, s3=self.s3, cfn=self.cfn, clock=lambda: NOW, **kwargs)
            self.s3_stub.assert_no_pending_responses()
            self.cfn_stub.assert_no_pending_responses()
        return result


ANY_UPDATE = {
    "StackName": ANY,
    "UsePreviousTemplate": ANY,
    "Parameters": ANY,
    "Capabilities": ANY,
    "ClientRequestToken": ANY,
    "RoleARN": ANY,
}


@pytest.fixture
def aws():
    return Aws()


def test_new_version_updates_stack_with_previous_template_and_every_other_parameter_kept(aws):
    # Given S3 says v2 is current and the stack runs v1
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v1"))
    # Then exactly this UpdateStack is sent
    aws.update(
        {
            "StackName": STACK,
            "UsePreviousTemplate": True,
            "Parameters": [
                {"ParameterKey": "ClusterName", "UsePreviousValue": True},
                {"ParameterKey": "ContainerImage", "UsePreviousValue": True},
                {"ParameterKey": "ModelS3Uri", "ParameterValue": URI},
                {"ParameterKey": "ModelVersionId", "ParameterValue": "v2"},
            ],
            "Capabilities": ["CAPABILITY_IAM"],
            "ClientRequestToken": request_token("auto", "v2", NOW),
            "RoleARN": ROLE,
        }
    )
    # When
    outcome = aws.run()
    # Then
    assert outcome.action is Action.STARTED
    assert (outcome.wanted_version, outcome.deployed_version) == ("v2", "v1")


def test_deployed_version_is_in_sync_and_sends_no_update(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v2"))
    outcome = aws.run()  # Stubber fails the test on any unexpected UpdateStack
    assert outcome.action is Action.IN_SYNC


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "CREATE_IN_PROGRESS"])
def test_busy_stack_defers_without_update_or_error(aws, status):
    aws.head("v2")
    aws.describe(stack(status, "v1"))
    outcome = aws.run()
    assert outcome.action is Action.DEFERRED
    assert status in outcome.reason


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED"])
def test_stack_that_cannot_be_updated_raises_alarm_without_update(aws, status):
    aws.head("v2")
    aws.describe(stack(status, "v1"))
    outcome = aws.run()
    assert outcome.action is Action.ALARM
    assert status in outcome.reason


def test_missing_service_stack_raises_alarm_and_changes_nothing(aws):
    aws.head("v2")
    aws.describe_missing()
    outcome = aws.run()
    assert outcome.action is Action.ALARM
    assert "service stack" in outcome.reason and "missing" in outcome.reason


def test_no_updates_to_be_performed_is_success(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v1"))
    aws.update_error("No updates are to be performed.")
    assert aws.run().action is Action.IN_SYNC


def test_stack_going_busy_between_describe_and_update_defers(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v1"))
    aws.update_error(f"Stack:arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/x is in UPDATE_IN_PROGRESS state and can not be updated.")
    assert aws.run().action is Action.DEFERRED


def test_unexpected_aws_error_is_raised_for_the_async_retry_policy(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v1"))
    aws.cfn_stub.add_client_error("update_stack", "AccessDenied", "not allowed", http_status_code=403)
    with pytest.raises(ClientError):
        aws.run()


def test_version_whose_rollout_rolled_back_is_skipped(aws):
    # Given the last update tried v2 and rolled back to v1, and v2 is still current
    aws.head("v2")
    aws.describe(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.events(request_token("auto", "v2", NOW - 600))
    # When / Then: no UpdateStack, a reason that tells the operator what to do
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED
    assert "rolled back" in outcome.reason


def test_newer_version_after_a_rollback_is_deployed(aws):
    aws.head("v3")
    aws.describe(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.events(request_token("auto", "v2", NOW - 600))
    aws.update()
    assert aws.run().action is Action.STARTED


def test_rollback_of_someone_elses_update_does_not_mark_the_version(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.events("console-update-1234")
    aws.update()
    assert aws.run().action is Action.STARTED


def test_forced_deploy_retries_a_failed_version(aws):
    # Given v2 rolled back; When an operator forces it; Then it is deployed again (no events read)
    aws.head("v2")
    aws.describe(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.update({**ANY_UPDATE, "ClientRequestToken": request_token("force", "v2", NOW)})
    assert aws.run(force=True).action is Action.STARTED


def test_empty_model_object_is_skipped(aws):
    aws.head("v2", size=0)
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED
    assert "empty" in outcome.reason


def test_deleted_model_object_is_skipped_and_stack_untouched(aws):
    aws.head_error("404", 404)
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED
    assert "no model object" in outcome.reason


def test_unversioned_bucket_raises_alarm(aws):
    aws.s3_stub.add_response("head_object", {"ContentLength": 10}, {"Bucket": BUCKET, "Key": KEY})
    outcome = aws.run()
    assert outcome.action is Action.ALARM
    assert "versioning" in outcome.reason


def test_refresh_changes_the_deployment_nonce_when_the_version_is_deployed(aws):
    aws.head("v2")
    aws.describe(stack("UPDATE_COMPLETE", "v2", extra={"DeploymentNonce": "old"}))
    token = request_token("refresh", "v2", NOW)
    aws.update(
        {
            **ANY_UPDATE,
            "Parameters": [
                {"ParameterKey": "ClusterName", "UsePreviousValue": True},
                {"ParameterKey": "ContainerImage", "UsePreviousValue": True},
                {"ParameterKey": "ModelS3Uri", "ParameterValue": URI},
                {"ParameterKey": "ModelVersionId", "ParameterValue": "v2"},
                {"ParameterKey": "DeploymentNonce", "ParameterValue": token},
            ],
            "ClientRequestToken": token,
        }
    )
    assert aws.run(refresh=True).action is Action.STARTED


def test_request_token_fits_cloudformation_rules_for_any_version_id():
    token = request_token("auto", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjV/BH40Nr8X8gdRQBpUMLUo", NOW)
    assert len(token) <= 128
    assert token.replace("-", "").isalnum() and token[0].isalnum()
    assert version_digest("a") != version_digest("b")
