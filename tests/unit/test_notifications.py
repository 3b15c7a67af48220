"""One SNS message per problem (aurelius/core/notifications.py), over a small fake SNS client.

The fake keeps the topic's tags and the published messages, and can refuse the tag calls as
IAM would (AccessDenied). moto's SNS is used end to end in tests/integration/test_redeploy_loop.py.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from aurelius.core.decision import Action
from aurelius.core.notifications import ALARM_TAG, Notifier, problem_digest
from aurelius.core.reconcile import Outcome
from tests.helpers import SERVICE_STACK

TOPIC = "arn:aws:sns:us-east-1:123456789012:aurelius-deploys"


class FakeSns:
    def __init__(self, refuse_tags: bool = False):
        self.tags: dict[str, str] = {}
        self.published: list[dict] = []
        self.refuse_tags = refuse_tags

    def _check(self, operation: str):
        if self.refuse_tags:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized"}}, operation)

    def publish(self, TopicArn, Subject, Message):
        assert TopicArn == TOPIC and len(Subject) <= 100
        self.published.append({"subject": Subject, **json.loads(Message)})

    def list_tags_for_resource(self, ResourceArn):
        self._check("ListTagsForResource")
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()]}

    def tag_resource(self, ResourceArn, Tags):
        self._check("TagResource")
        self.tags.update({t["Key"]: t["Value"] for t in Tags})

    def untag_resource(self, ResourceArn, TagKeys):
        self._check("UntagResource")
        for key in TagKeys:
            self.tags.pop(key, None)


def alarm(status: str = "UPDATE_ROLLBACK_FAILED", version: str = "v2", finding: str = "StackNotUpdatable") -> Outcome:
    return Outcome(Action.ALARM, f"stack is {status}", SERVICE_STACK, version, "v1", status, finding=finding)


HEALTHY = Outcome(Action.STARTED, "update started to v2", SERVICE_STACK, "v2", "v1", "UPDATE_ROLLBACK_COMPLETE")


def test_twelve_identical_alarms_publish_once():
    # Given a topic with no alarm recorded
    sns = FakeSns()
    notifier = Notifier(sns, TOPIC)
    # When the same problem is found 12 times
    done = [notifier.handle(alarm()) for _ in range(12)]
    # Then one message, and the problem's digest is on the topic
    assert done == ["published"] + ["already-notified"] * 11
    assert len(sns.published) == 1 and sns.published[0]["notice"] == "alarm"
    assert sns.tags == {ALARM_TAG: problem_digest(alarm())}


@pytest.mark.parametrize(
    "changed",
    [alarm(version="v3"), alarm(status="ROLLBACK_COMPLETE"), alarm(finding="StackMissing", status=None)],
    ids=["new-version", "new-state", "other-problem"],
)
def test_a_changed_problem_publishes_again(changed):
    sns = FakeSns()
    notifier = Notifier(sns, TOPIC)
    notifier.handle(alarm())
    assert notifier.handle(changed) == "published"
    assert len(sns.published) == 2


def test_a_cleared_problem_publishes_resolved_once_and_forgets_it():
    # Given an alarm was sent
    sns = FakeSns()
    notifier = Notifier(sns, TOPIC)
    notifier.handle(alarm())
    # When the next reconciles are healthy
    done = [notifier.handle(HEALTHY) for _ in range(3)]
    # Then one "resolved" message, the tag is gone, and the same problem would be sent again
    assert done == ["resolved", "nothing", "nothing"]
    assert sns.published[-1]["notice"] == "resolved" and "resolved" in sns.published[-1]["subject"]
    assert sns.tags == {}
    assert notifier.handle(alarm()) == "published"


def test_healthy_reconciles_without_a_past_alarm_publish_nothing():
    sns = FakeSns()
    assert Notifier(sns, TOPIC).handle(HEALTHY) == "nothing" and sns.published == []


def test_a_deadline_cancel_is_published_once_without_touching_the_tag():
    sns = FakeSns()
    cancelled = Outcome(
        Action.CANCELLED, "past its deadline", SERVICE_STACK, "v2", "v2", "UPDATE_IN_PROGRESS", finding="PastDeadline"
    )
    assert Notifier(sns, TOPIC).handle(cancelled) == "cancelled"
    assert sns.published[0]["notice"] == "cancelled" and "cancelled (deadline)" in sns.published[0]["subject"]
    assert sns.tags == {}


def test_without_permission_to_tag_every_alarm_is_still_published_and_a_warning_logged():
    # Given a function policy that lacks the sns tag actions
    sns, warnings = FakeSns(refuse_tags=True), []
    notifier = Notifier(sns, TOPIC, warn=lambda message, **extra: warnings.append(message))
    # When the same problem is found twice
    done = [notifier.handle(alarm()), notifier.handle(alarm())]
    # Then never silent: both published (at least once beats at most once), and the logs say why
    assert done == ["published", "published"] and len(sns.published) == 2
    assert any("tag" in w for w in warnings)
