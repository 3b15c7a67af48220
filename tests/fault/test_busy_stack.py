"""The service stack goes busy between our DescribeStacks and our UpdateStack.

Someone else's update (a person running deploy-service.py, a rollback) starts in the gap.
CloudFormation then refuses UpdateStack with a ValidationError "... is in UPDATE_IN_PROGRESS
state and can not be updated." (docs/aws.md). moto finishes updates at once and never answers so,
so the answer is injected at the HTTP layer (tests/fault/harness.py). The reconcile defers; the
stack's status-change event, when the other update ends, deploys the newest version once.
"""

from __future__ import annotations

import pytest

from tests.fault.harness import (
    assert_newest_deployed_once_and_nothing_else_changed,
    busy_update_error,
    report_busy,
    snapshot,
)

BUSY_STATES = ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"]


@pytest.mark.parametrize("state", BUSY_STATES)
def test_stack_busy_at_update_stack_defers_without_change_then_status_event_deploys_newest_once(
    deployed, lambdas, faults, alarms, state
):
    # Given version 2 uploaded, and the stack going busy after our DescribeStacks
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("UpdateStack", 1, *busy_update_error(state))
    # When S3's notification reaches redeploy_service
    result = lambdas.upload_event()
    # Then the reconcile defers: one UpdateStack sent, not retried by botocore (a ValidationError
    # is not transient), nothing changed, no alarm
    assert result["action"] == "deferred" and state in result["reason"]
    assert faults.sends["UpdateStack"] == 1
    assert snapshot(deployed) == before
    assert alarms[1]() == []
    # When the other update ends and its status change wakes scheduled_refresh
    finished = lambdas.status_event()
    # Then version 2 is deployed, once
    assert finished["action"] == "started"
    assert faults.sends["UpdateStack"] == 2
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)


def test_uploads_during_a_long_busy_period_end_with_only_the_newest_deployed_once(deployed, lambdas, faults):
    # Given version 2 uploaded and the stack going busy before our UpdateStack
    deployed.upload(2)
    faults.fail("UpdateStack", 1, *busy_update_error())
    first = lambdas.upload_event()
    # When version 3 is uploaded while the stack is still busy (DescribeStacks shows it), its
    # notification arrives, and then the status change of the other update
    newest = deployed.upload(3)
    before = snapshot(deployed)
    report_busy(lambdas.client("redeploy_service", "cloudformation"))
    second = lambdas.upload_event()
    finished = lambdas.status_event()
    # Then both uploads were deferred, and only version 3 was ever deployed, once
    assert [first["action"], second["action"], finished["action"]] == ["deferred", "deferred", "started"]
    assert faults.sends["UpdateStack"] == 2  # the refused one and the one that deployed v3
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)


def test_stack_busy_and_its_status_event_lost_is_repaired_by_the_schedule(deployed, lambdas, faults):
    # Given version 2's reconcile deferred because the stack went busy
    newest = deployed.upload(2)
    before = snapshot(deployed)
    faults.fail("UpdateStack", 1, *busy_update_error())
    assert lambdas.upload_event()["action"] == "deferred"
    # When the status-change event never arrives, but the next schedule tick does
    result = lambdas.tick()
    # Then the tick deploys version 2, once
    assert result["action"] == "started"
    assert_newest_deployed_once_and_nothing_else_changed(before, snapshot(deployed), newest)
