"""What reconcile SENDS for each decision, with botocore Stubber.

The decisions themselves are table-driven over the pure function in test_decision.py. moto
cannot produce *_IN_PROGRESS, a cancel, UPDATE_ROLLBACK_COMPLETE after a circuit-breaker
rollback or a stack going busy between two calls (docs/moto.md), so these tests pin down the
calls reconcile makes, in order, and their parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from aurelius.core.decision import Action, decide
from aurelius.core.reconcile import Target, act, observe, reconcile
from aurelius.core.tokens import request_token, version_digest
from tests.helpers import BUCKET, KEY, MODEL_URI, SERVICE_STACK
from tests.stubs import StubbedAws
from tests.stubs import described_stack as stack

STACK = SERVICE_STACK
URI = MODEL_URI
ROLE = "arn:aws:iam::123456789012:role/aurelius-cfn"
TARGET = Target(STACK, BUCKET, KEY, ROLE)
NOW = 1_795_600_000.0


def ago(seconds: float) -> datetime:
    return datetime.fromtimestamp(NOW - seconds, UTC)


class Aws(StubbedAws):
    """Stubbed S3 and CloudFormation clients with helpers for the calls reconcile must make."""

    def head(self, version: str = "v2", size: int = 100):
        self.s3_stub.add_response(
            "head_object",
            {"VersionId": version, "ContentLength": size, "LastModified": datetime(2026, 11, 26, tzinfo=UTC)},
            {"Bucket": BUCKET, "Key": KEY},
        )

    def head_error(self, code: str, status: int):
        self.s3_stub.add_client_error("head_object", service_error_code=code, http_status_code=status)

    def events(self, token: str | None, *older: dict):
        event = {
            "StackId": "x",
            "EventId": "e1",
            "StackName": STACK,
            "LogicalResourceId": STACK,
            "ResourceType": "AWS::CloudFormation::Stack",
            "ResourceStatus": "UPDATE_IN_PROGRESS",
            "Timestamp": datetime(2026, 11, 26, tzinfo=UTC),
        }
        if token:
            event["ClientRequestToken"] = token
        self.cfn_stub.add_response("describe_stack_events", {"StackEvents": [*older, event]}, {"StackName": STACK})

    def update(self, expected: dict | None = None):
        self.cfn_stub.add_response("update_stack", {"StackId": "x"}, expected or ANY_UPDATE)

    def update_error(self, message: str):
        self.cfn_stub.add_client_error("update_stack", "ValidationError", message, http_status_code=400)

    def run(self, **kwargs):
        with self.active():
            result = reconcile(TARGET, s3=self.s3, cfn=self.cfn, clock=lambda: NOW, **kwargs)
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
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
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
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v2"))
    outcome = aws.run()  # Stubber fails the test on any unexpected UpdateStack
    assert outcome.action is Action.IN_SYNC and outcome.finding == "InSync"


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]
)
def test_busy_or_broken_stack_sends_nothing_and_reads_no_events(aws, status):
    # Given a stack that is busy (no deadline parameter) or needs a person
    aws.head("v2")
    aws.describe_stacks(stack(status, "v1", started=ago(60)))
    # When / Then: no DescribeStackEvents, no UpdateStack (Stubber has none queued)
    outcome = aws.run()
    assert outcome.action in (Action.DEFERRED, Action.ALARM) and status in outcome.reason


def test_missing_service_stack_is_an_alarm_not_an_exception(aws):
    aws.head("v2")
    aws.describe_missing()
    outcome = aws.run()
    assert outcome.action is Action.ALARM and outcome.finding == "StackMissing"


def test_no_updates_to_be_performed_is_success(aws):
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    aws.update_error("No updates are to be performed.")
    assert aws.run().action is Action.IN_SYNC


def test_stack_going_busy_between_describe_and_update_defers(aws):
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    aws.update_error(
        f"Stack:arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/x is in UPDATE_IN_PROGRESS state and can not be updated."
    )
    assert aws.run().action is Action.DEFERRED


def test_unexpected_aws_error_is_raised_for_the_async_retry_policy(aws):
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    aws.cfn_stub.add_client_error("update_stack", "AccessDenied", "not allowed", http_status_code=403)
    with pytest.raises(ClientError):
        aws.run()


# ---------------------------------------------------------------------------- the failed mark
def test_failed_mark_reads_the_newest_update_token_and_sends_no_update(aws):
    # Given the last update tried v2 and rolled back to v1, and v2 is still current
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.events(request_token("auto", "v2", NOW - 600))
    # When / Then: no UpdateStack, a reason that tells the operator what to do
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED and "rolled back" in outcome.reason


def test_a_nested_stack_update_does_not_hide_the_stacks_own_token(aws):
    # Given the newest stack-type event is a NESTED stack's update (its own logical id, another token)
    nested = {
        "StackId": "x",
        "EventId": "n1",
        "StackName": STACK,
        "LogicalResourceId": "NestedAlarms",
        "ResourceType": "AWS::CloudFormation::Stack",
        "ResourceStatus": "UPDATE_IN_PROGRESS",
        "Timestamp": datetime(2026, 11, 26, 0, 1, tzinfo=UTC),
        "ClientRequestToken": "Console-nested-1",
    }
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    # (newest first: the nested stack's event, then ours)
    aws.cfn_stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                nested,
                {
                    **nested,
                    "EventId": "e1",
                    "LogicalResourceId": STACK,
                    "ClientRequestToken": request_token("auto", "v2", NOW - 600),
                },
            ]
        },
        {"StackName": STACK},
    )
    # When / Then: the stack's own update (v2) counts, so v2 is still marked failed
    assert aws.run().finding == "FailedVersion"


def test_forced_deploy_retries_a_failed_version_without_reading_events(aws):
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_ROLLBACK_COMPLETE", "v1"))
    aws.update({**ANY_UPDATE, "ClientRequestToken": request_token("force", "v2", NOW)})
    assert aws.run(force=True).action is Action.STARTED


# ---------------------------------------------------------------------------- the deadline
DEADLINE = {"RolloutDeadlineSeconds": "1800"}


def test_update_before_its_deadline_is_left_alone(aws):
    # Given our update to v2 has run 10 minutes of its 30
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_IN_PROGRESS", "v2", extra=DEADLINE, started=ago(600)))
    # When / Then: deferred, no events read, no CancelUpdateStack
    outcome = aws.run()
    assert outcome.action is Action.DEFERRED and "20m00s left" in outcome.reason


def test_our_update_past_its_deadline_is_cancelled_with_a_cancel_token(aws):
    # Given our update to v2 has run 31 minutes of its 30
    ours = request_token("auto", "v2", NOW - 1860)
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_IN_PROGRESS", "v2", extra=DEADLINE, started=ago(1860)))
    aws.events(ours)
    # Then exactly this CancelUpdateStack is sent (its token names the version being cancelled)
    cancel = f"aurelius-cancel-{version_digest('v2')}-{int(NOW)}"
    aws.cfn_stub.add_response("cancel_update_stack", {}, {"StackName": STACK, "ClientRequestToken": cancel})
    # When
    outcome = aws.run()
    # Then
    assert outcome.action is Action.CANCELLED and outcome.token == cancel
    assert "past its deadline" in outcome.reason and "passed 1m00s ago" in outcome.reason


def test_a_persons_update_past_the_deadline_is_never_cancelled(aws):
    # Given someone's update (deploy-service.py, the console) has run past the deadline
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_IN_PROGRESS", "v1", extra=DEADLINE, started=ago(7200)))
    aws.events("Console-UpdateStack-1234")
    # When / Then: deferred, and Stubber saw no CancelUpdateStack
    outcome = aws.run()
    assert outcome.action is Action.DEFERRED and "never cancelled" in outcome.reason


def test_cancel_refused_because_the_update_just_finished_defers(aws):
    # Given our update is past its deadline, but finishes between DescribeStacks and the cancel
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_IN_PROGRESS", "v2", extra=DEADLINE, started=ago(1860)))
    aws.events(request_token("auto", "v2", NOW - 1860))
    aws.cfn_stub.add_client_error(
        "cancel_update_stack",
        "ValidationError",
        "CancelUpdateStack cannot be called from current stack status",
        http_status_code=400,
    )
    # When / Then: deferred (its status-change event brings reconcile back), no exception
    outcome = aws.run()
    assert outcome.action is Action.DEFERRED and "ended before the cancel" in outcome.reason


# ---------------------------------------------------------------------------- the model object
def test_empty_model_object_is_skipped(aws):
    aws.head("v2", size=0)
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED and "empty" in outcome.reason


def test_deleted_model_object_is_skipped_and_stack_untouched(aws):
    aws.head_error("404", 404)
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    outcome = aws.run()
    assert outcome.action is Action.SKIPPED and "no model object" in outcome.reason


@pytest.mark.parametrize("code", ["403", "AccessDenied", "Forbidden"])
def test_head_object_access_denied_is_an_alarm_naming_the_missing_permission_not_an_exception(aws, code):
    # Regression (issue 10 item 2): a 403 was raised, so Lambda retried it and filled the queue
    aws.head_error(code, 403)
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    # When
    outcome = aws.run()
    # Then an alarm whose reason says what to grant, on which ARN
    assert outcome.action is Action.ALARM and outcome.finding == "ModelAccessDenied"
    assert "access denied" in outcome.reason
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{KEY}" in outcome.reason
    assert f"s3:ListBucket on arn:aws:s3:::{BUCKET}" in outcome.reason


def test_access_denied_on_a_named_version_names_get_object_version(aws):
    aws.s3_stub.add_client_error(
        "head_object", "403", http_status_code=403, expected_params={"Bucket": BUCKET, "Key": KEY, "VersionId": "v1"}
    )
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v2"))
    outcome = aws.run(version_id="v1", force=True)
    assert outcome.action is Action.ALARM and "s3:GetObjectVersion" in outcome.reason


def test_unversioned_bucket_raises_alarm(aws):
    aws.s3_stub.add_response("head_object", {"ContentLength": 10}, {"Bucket": BUCKET, "Key": KEY})
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    outcome = aws.run()
    assert outcome.action is Action.ALARM and "versioning" in outcome.reason


# ---------------------------------------------------------------------------- refresh and the token
def test_refresh_changes_the_deployment_nonce_when_the_version_is_deployed(aws):
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v2", extra={"DeploymentNonce": "old"}))
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


# ---------------------------------------------------------------------------- observe, decide, act
def test_observe_and_decide_only_read_and_act_sends_exactly_what_the_decision_carries(aws):
    # Given v2 is current and the stack runs v1
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v1"))
    # When it is observed and decided (what `aurelius status` does): two reads, no write
    with aws.active():
        decision = decide(observe(TARGET, s3=aws.s3, cfn=aws.cfn, now=datetime.fromtimestamp(NOW, UTC)))
    # Then acting on that decision sends its token and parameters, and reads nothing again
    aws.update(
        {
            "StackName": STACK,
            "UsePreviousTemplate": True,
            "Parameters": list(decision.update.parameters),
            "Capabilities": ["CAPABILITY_IAM"],
            "ClientRequestToken": decision.token,
            "RoleARN": ROLE,
        }
    )
    with aws.active():
        outcome = act(TARGET, decision, cfn=aws.cfn)
    assert outcome.action is Action.STARTED and outcome.token == decision.token
    assert (outcome.wanted_version, outcome.deployed_version) == ("v2", "v1")


def test_act_on_a_decision_to_do_nothing_makes_no_call(aws):
    # Given the stack runs the current version
    aws.head("v2")
    aws.describe_stacks(stack("UPDATE_COMPLETE", "v2"))
    with aws.active():
        decision = decide(observe(TARGET, s3=aws.s3, cfn=aws.cfn))
    # When / Then: act sends nothing (Stubber has nothing queued) and reports the decision
    with aws.active():
        outcome = act(TARGET, decision, cfn=aws.cfn)
    assert outcome.action is Action.IN_SYNC and outcome.finding == "InSync" and outcome.token is None
