"""One SNS message per problem, not one per schedule tick.

An alarm (stack not updatable, stack missing, access denied, ...) is found again by every
reconcile until a person acts: every 5 minutes with the default schedule. A problem is
(stack, state, model version); it is published when it first appears, again only when it changes
(another state, a newer upload), and once more when it clears ("resolved").

"Already notified" is kept where AWS already stores it, not in a database of ours: a tag on the
notification topic, ``aurelius:last-alarm`` = a digest of the problem, read with
ListTagsForResource, written with TagResource after the message is published, removed with
UntagResource when the problem clears. Why the topic: the functions already own it (one topic
per trigger stack, so per service stack), tagging it changes nothing that anyone reads, and it
needs no new resource. The service stack itself could only be tagged by an UpdateStack, which
would start a deployment.

Order: publish, then tag. A lost tag write means one message too many, never a lost one; if the
tag calls themselves fail (a policy not yet updated), the message is published anyway. Two
reconciles that find a new problem at the same moment may both publish it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from aurelius.core.decision import Action
from aurelius.core.reconcile import Outcome

ALARM_TAG = "aurelius:last-alarm"


def problem_digest(outcome: Outcome) -> str:
    """(stack, state, version) of an alarm, as a tag value (hex: allowed in any tag)."""
    problem = [outcome.stack_name, outcome.finding or "", outcome.stack_status or "", outcome.wanted_version or ""]
    return hashlib.sha256(json.dumps(problem).encode("utf-8")).hexdigest()[:32]


class Notifier:
    """Publishes outcomes to the deploy notifications topic, once per problem."""

    def __init__(self, sns, topic_arn: str, warn=lambda message, **extra: None):
        self.sns, self.topic_arn, self.warn = sns, topic_arn, warn

    def handle(self, outcome: Outcome) -> str:
        """Publish what this outcome calls for. Returns what was done, for the log:
        published, already-notified, resolved, cancelled or nothing."""
        if outcome.action is Action.CANCELLED:
            # One cancel per stuck update: the stack leaves UPDATE_IN_PROGRESS, so it cannot repeat.
            self._publish(
                f"aurelius: {outcome.stack_name} rollout cancelled (deadline)",
                {"notice": "cancelled", **outcome.as_dict()},
            )
            return "cancelled"
        notified = self._notified()
        if outcome.action is Action.ALARM:
            digest = problem_digest(outcome)
            if notified == digest:
                return "already-notified"
            self._publish(f"aurelius: {outcome.stack_name} needs attention", {"notice": "alarm", **outcome.as_dict()})
            self._tag(digest)
            return "published"
        if notified:
            self._publish(f"aurelius: {outcome.stack_name} resolved", {"notice": "resolved", **outcome.as_dict()})
            self._untag()
            return "resolved"
        return "nothing"

    def _publish(self, subject: str, message: dict[str, Any]) -> None:
        # SNS subjects: at most 100 characters (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
        self.sns.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=json.dumps(message, indent=2))

    def _notified(self) -> str | None:
        try:
            tags = self.sns.list_tags_for_resource(ResourceArn=self.topic_arn).get("Tags", [])
        except ClientError as exc:
            self.warn("cannot read the last alarm tag; notifying as if new", error=str(exc))
            return None
        return next((t.get("Value") for t in tags if t.get("Key") == ALARM_TAG), None)

    def _tag(self, digest: str) -> None:
        try:
            self.sns.tag_resource(ResourceArn=self.topic_arn, Tags=[{"Key": ALARM_TAG, "Value": digest}])
        except ClientError as exc:
            self.warn("cannot record the alarm on the topic; the next tick notifies again", error=str(exc))

    def _untag(self) -> None:
        try:
            self.sns.untag_resource(ResourceArn=self.topic_arn, TagKeys=[ALARM_TAG])
        except ClientError as exc:
            self.warn("cannot clear the alarm tag on the topic", error=str(exc))
