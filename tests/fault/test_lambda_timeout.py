"""Lambda stops the function in the middle of a reconcile (its timeout), then the retry runs.

The timeout is a BaseException raised right after an AWS answer arrives (tests/fault/harness.py):
nothing in the handler can catch it, as nothing can catch Lambda killing the runtime. Lambda
retries an asynchronous event that failed (twice, 1 and 2 minutes later, docs/aws.md) in a new
execution environment; the harness loads the handler module again for it.
"""

from __future__ import annotations

import pytest

from tests.fault.harness import (
    LambdaTimeout,
    assert_newest_deployed_once_and_nothing_else_changed,
    die_after,
    report_busy,
    snapshot,
)

POINTS = [
    pytest.param("s3", "HeadObject", id="after-HeadObject"),
    pytest.param("cloudformation", "DescribeStacks", id="after-DescribeStacks"),
    pytest.param("cloudformation", "UpdateStack", id="after-UpdateStack-before-reporting"),
]


@pytest.mark.parametrize("service, operation", POINTS)
def test_timeout_mid_reconcile_then_lambdas_retry_leaves_the_newest_deployed_once(
    deployed, lambdas, faults, alarms, service, operation
):
    # Given version 2 uploaded, and redeploy_service timing out right after the answer to one
    # of its three calls
    newest = deployed.upload(2)
    before = snapshot(deployed)
    died = die_after(lambdas.client("redeploy_service", service), operation)
    # When S3's notification arrives, and the function is stopped there
    with pytest.raises(LambdaTimeout):
        lambdas.upload_event()
    assert died == [operation]
    # and Lambda retries the same event in a new execution environment
    result = lambdas.upload_event()
    # Then the newest version is deployed through one applied update: the retry found it done
    # (timeout after UpdateStack) or did it (timeout before)
    expected = "in-sync" if operation == "UpdateStack" else "started"
    assert result["action"] == expected
    assert faults.sends["UpdateStack"] == 1
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
    assert alarms[1]() == []


def test_timeout_after_update_stack_while_the_rollout_runs_never_updates_twice(deployed, lambdas, faults):
    # Given version 2 uploaded, and redeploy_service timing out right after UpdateStack returned
    newest = deployed.upload(2)
    before = snapshot(deployed)
    die_after(lambdas.client("redeploy_service", "cloudformation"), "UpdateStack")
    with pytest.raises(LambdaTimeout):
        lambdas.upload_event()
    # When Lambda's retry runs while CloudFormation still rolls the service out (on AWS the stack
    # is UPDATE_IN_PROGRESS for minutes; moto finishes at once, so the retry's DescribeStacks is
    # shown busy), and later the stack's UPDATE_COMPLETE status change arrives
    lambdas.prepare.append(
        lambda function, clients: function == "redeploy_service" and report_busy(clients["cloudformation"])
    )
    retried = lambdas.upload_event()
    finished = lambdas.status_event()
    # Then the retry found the stack busy rolling v2 out (deferred: a busy stack is never updated,
    # whatever it pins), did not wait and did not update again, and neither did the status change
    assert (retried["action"], retried["stack_status"], retried["deployed_version"]) == (
        "deferred",
        "UPDATE_IN_PROGRESS",
        newest,
    )
    assert finished["action"] == "in-sync"
    assert faults.sends["UpdateStack"] == 1
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)


def test_timeout_before_update_stack_then_a_newer_upload_deploys_only_the_newest(deployed, lambdas, faults):
    # Given version 2 uploaded, and redeploy_service timing out after DescribeStacks (it wanted v2)
    deployed.upload(2)
    die_after(lambdas.client("redeploy_service", "cloudformation"), "DescribeStacks")
    with pytest.raises(LambdaTimeout):
        lambdas.upload_event()
    # When version 3 is uploaded before Lambda retries v2's event, and both events arrive
    newest = deployed.upload(3)
    before = snapshot(deployed)
    results = [lambdas.upload_event(), lambdas.upload_event()]
    # Then version 3 is deployed once and version 2 never was
    assert [r["action"] for r in results] == ["started", "in-sync"]
    assert faults.sends["UpdateStack"] == 1
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
