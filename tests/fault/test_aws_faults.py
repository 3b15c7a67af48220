"""Throttling and 5xx answers from S3 and CloudFormation, handled by botocore's retries.

The handlers' clients use aurelius.core.lambda_runtime.BOTO_CONFIG (retries mode standard, 5
attempts). Faults are HTTP answers injected ahead of moto (tests/fault/harness.py), so each
retry is botocore's decision. After every fault: the newest model version is deployed through
exactly one applied UpdateStack, and nothing else changed.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.fault.harness import assert_newest_deployed_once_and_nothing_else_changed, snapshot

S3_FAULTS = [
    pytest.param(503, "SlowDown", id="503-SlowDown"),
    pytest.param(500, "InternalError", id="500-InternalError"),
]
CFN_FAULTS = [
    pytest.param(400, "Throttling", id="400-Throttling"),
    pytest.param(400, "ThrottlingException", id="400-ThrottlingException"),
    pytest.param(503, "ServiceUnavailable", id="503-ServiceUnavailable"),
    pytest.param(500, "InternalFailure", id="500-InternalFailure"),
]


@pytest.mark.parametrize("status, code", S3_FAULTS)
def test_failing_head_object_is_retried_and_the_newest_version_deployed_once(
    deployed, lambdas, faults, backoff, alarms, status, code
):
    # Given version 2 uploaded, and S3 failing the next three HeadObject requests
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("HeadObject", 3, status, code)
    # When S3's notification reaches redeploy_service
    result = lambdas.upload_event()
    # Then botocore retried (one call, four sends, three backoffs) and the update started
    assert result["action"] == "started"
    assert (faults.calls["HeadObject"], faults.sends["HeadObject"], faults.injected["HeadObject"]) == (1, 4, 3)
    assert len(backoff) == 3 and all(delay >= 0 for delay in backoff)
    # and version 2 is deployed once, nothing else changed, no alarm
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
    assert alarms[1]() == []


@pytest.mark.parametrize("status, code", CFN_FAULTS)
def test_failing_describe_stacks_is_retried_and_the_newest_version_deployed_once(
    deployed, lambdas, faults, alarms, status, code
):
    # Given version 2 uploaded, and CloudFormation failing the next three DescribeStacks requests
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("DescribeStacks", 3, status, code, "Rate exceeded" if "Throttl" in code else "")
    # When S3's notification reaches redeploy_service
    result = lambdas.upload_event()
    # Then the fourth send got through and one update started
    assert result["action"] == "started"
    assert (faults.calls["DescribeStacks"], faults.sends["DescribeStacks"]) == (1, 4)
    assert (faults.calls["UpdateStack"], faults.sends["UpdateStack"]) == (1, 1)
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
    assert alarms[1]() == []


@pytest.mark.parametrize("status, code", CFN_FAULTS)
def test_update_stack_refused_before_cloudformation_acted_is_retried_and_applied_once(
    deployed, lambdas, faults, status, code
):
    # Given version 2 uploaded, and CloudFormation refusing the next two UpdateStack requests
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("UpdateStack", 2, status, code)
    # When S3's notification reaches redeploy_service
    result = lambdas.upload_event()
    # Then botocore re-sent the same request and the third send was applied, once
    assert result["action"] == "started"
    assert (faults.calls["UpdateStack"], faults.sends["UpdateStack"]) == (1, 3)
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)


def test_update_stack_applied_but_answer_lost_is_retried_without_a_second_deploy(deployed, lambdas, faults):
    # Given version 2 uploaded, and the first UpdateStack applied by CloudFormation but answered
    # with a 500 (the answer lost on the way back)
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("UpdateStack", 1, 500, "InternalFailure", after_applying=True)
    # When S3's notification reaches redeploy_service
    result = lambdas.upload_event()
    # Then botocore's retry of the same request changes nothing more (moto: "No updates are to
    # be performed"; AWS: the same ClientRequestToken), and the version is deployed once
    assert result["action"] in ("started", "in-sync")
    assert faults.sends["UpdateStack"] == 2
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
def test_every_call_of_a_reconcile_throttled_at_once_still_deploys_the_newest_once(
    deployed, make_lambdas, faults, alarms, retry_mode
):
    # Given versions 2 and 3 uploaded, and S3 and CloudFormation throttling each call of the
    # reconcile once, under botocore's standard or adaptive retry mode (adaptive then also
    # slows its own sending rate: this test takes a few seconds in that mode)
    lambdas = make_lambdas(retry_mode)
    deployed.upload(2)
    newest = deployed.upload(3)
    before = snapshot(deployed)
    faults.fail("HeadObject", 1, 503, "SlowDown").fail("DescribeStacks", 1, 400, "Throttling").fail(
        "UpdateStack", 1, 400, "Throttling"
    )
    # When both uploads' notifications arrive
    results = [lambdas.upload_event(), lambdas.upload_event()]
    # Then the first deploys version 3, the second finds it in sync
    assert [r["action"] for r in results] == ["started", "in-sync"]
    assert faults.injected == {"HeadObject": 1, "DescribeStacks": 1, "UpdateStack": 1}
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
    assert alarms[1]() == []


def test_throttling_beyond_the_retry_budget_fails_the_invocation_and_lambdas_retry_deploys_once(
    deployed, lambdas, faults, alarms
):
    # Given version 2 uploaded, and DescribeStacks throttled six times in a row: all of
    # BOTO_CONFIG's sends (max_attempts=5 counts retries, so botocore sends six times)
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("DescribeStacks", 6, 400, "Throttling", "Rate exceeded")
    # When S3's notification reaches redeploy_service
    with pytest.raises(ClientError, match="Throttling"):
        lambdas.upload_event()
    # Then the invocation failed (Lambda will retry it) and nothing changed yet
    assert faults.sends["DescribeStacks"] == 6 and faults.sends["UpdateStack"] == 0
    assert snapshot(deployed) == before
    # When Lambda's asynchronous retry delivers the same event to a new environment
    result = lambdas.upload_event()
    # Then version 2 is deployed once, and no alarm went out (a throttle is not a human's problem)
    assert result["action"] == "started"
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
    assert alarms[1]() == []


def test_head_object_access_denied_is_one_alarm_naming_the_permission_not_a_retried_error(
    deployed, lambdas, faults, alarms
):
    # Regression (issue 10 item 2): without s3:ListBucket a missing key answers 403, and a 403 used
    # to escape the handler, so Lambda retried it and the failure queue filled up.
    # Given the function's role cannot read the model object
    deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("HeadObject", 2, 403, "AccessDenied", "Access Denied")
    # When S3's notification, and then a schedule tick, reach the functions
    first, second = lambdas.upload_event(), lambdas.tick()
    # Then both return an alarm (no exception for Lambda to retry), botocore did not retry the 403,
    # and the reason says what to grant on which ARN
    assert [first["action"], second["action"]] == ["alarm", "alarm"]
    assert faults.sends["HeadObject"] == 2
    assert (
        "access denied" in first["reason"]
        and "s3:GetObject on arn:aws:s3:::" in first["reason"]
        and "s3:ListBucket" in first["reason"]
    )
    # and nothing changed, and one message went out for the one problem
    assert snapshot(deployed) == before
    (message,) = alarms[1]()
    assert "access denied" in message["Body"]
