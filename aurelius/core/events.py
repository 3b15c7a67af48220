"""Turn an incoming event into a wake-up call, or reject it with a reason.

The event only says "look again"; what gets deployed always comes from HeadObject
(aurelius.core.reconcile). So validation here is about *whether* to wake up: the right bucket and
key, an object-created event, a well-formed payload. Nothing is half-applied: an event is
either accepted whole or rejected with a logged reason.

The fields are read straight from the event's documented JSON (S3 event message structure,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html; its
EventBridge form, https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html), not
through powertools' event data classes: importing any one of them runs that package's
`__init__`, which imports all ~40 event sources: over a third of the function's cold start
beyond boto3 for four keys (bench row 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class RejectedEvent(Exception):
    """The event is not ours or is malformed; str() is the reason."""


@dataclass(frozen=True)
class WakeUp:
    trigger: str  # "s3-notification", "s3-eventbridge", "schedule", "stack-status"
    detail: str  # a short human description for the log
    refresh_allowed: bool = False  # only schedule ticks may force a fresh deployment


def _require_mapping(event: Any) -> Mapping[str, Any]:
    if not isinstance(event, Mapping):
        raise RejectedEvent(f"event is a {type(event).__name__}, not a JSON object")
    return event


def model_upload_wakeup(event: Any, bucket: str, key: str) -> WakeUp:
    """Accept an S3 ObjectCreated notification (or its EventBridge form) for exactly bucket/key."""
    event = _require_mapping(event)
    if "Records" in event:
        return _from_s3_notification(event, bucket, key)
    if event.get("source") == "aws.s3":
        return _from_eventbridge(event, bucket, key)
    raise RejectedEvent("neither an S3 notification (Records) nor an EventBridge aws.s3 event")


def _from_s3_notification(event: Mapping[str, Any], bucket: str, key: str) -> WakeUp:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise RejectedEvent("S3 notification without records")
    reasons = []
    try:
        for record in records:
            name = record["eventName"] or ""
            # Keys arrive URL-encoded: "my model.pkl" as "my+model.pkl" (docs/aws.md#s3-event-notifications).
            got_bucket, got_key = record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])
            if record["eventSource"] != "aws:s3" or not name.startswith("ObjectCreated:"):
                reasons.append(f"{name or 'unnamed'} event is not an object creation")
            elif (got_bucket, got_key) != (bucket, key):
                reasons.append(f"s3://{got_bucket}/{got_key} is not the model object s3://{bucket}/{key}")
            else:
                return WakeUp("s3-notification", f"{name} s3://{got_bucket}/{got_key}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise RejectedEvent(f"malformed S3 notification record (missing {exc})") from None
    raise RejectedEvent("; ".join(reasons))


def _from_eventbridge(event: Mapping[str, Any], bucket: str, key: str) -> WakeUp:
    detail_type = event.get("detail-type")  # .get: a missing field is a bad event, not a crash
    if detail_type != "Object Created":
        raise RejectedEvent(f"EventBridge {detail_type!r} event is not 'Object Created'")
    try:
        detail = event["detail"]
        got_bucket, raw_key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError):
        raise RejectedEvent("malformed EventBridge S3 event (no detail.bucket.name or detail.object.key)") from None
    if not isinstance(got_bucket, str) or not isinstance(raw_key, str):
        raise RejectedEvent("malformed EventBridge S3 event (detail.bucket.name or detail.object.key is not a string)")
    if got_bucket != bucket or key not in (raw_key, unquote_plus(raw_key)):
        raise RejectedEvent(f"s3://{got_bucket}/{raw_key} is not the model object s3://{bucket}/{key}")
    return WakeUp("s3-eventbridge", f"Object Created s3://{got_bucket}/{key}")


def refresh_wakeup(event: Any, stack_name: str) -> WakeUp:
    """Accept a schedule tick, or a status change of exactly our service stack."""
    event = _require_mapping(event)
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == "aws.events" and detail_type == "Scheduled Event":
        return WakeUp("schedule", f"schedule tick {event.get('time', '')}".strip(), refresh_allowed=True)
    if source == "aws.cloudformation" and detail_type == "CloudFormation Stack Status Change":
        detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
        stack_id = str(detail.get("stack-id", ""))
        status_details = detail.get("status-details")
        status = status_details.get("status", "?") if isinstance(status_details, Mapping) else "?"
        # arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID
        parts = stack_id.split("/")
        if len(parts) < 3 or parts[-2] != stack_name:
            raise RejectedEvent(f"status change of {stack_id or 'an unnamed stack'}, not {stack_name}")
        return WakeUp("stack-status", f"{stack_name} is {status}")
    raise RejectedEvent(f"unexpected event source={source!r} detail-type={detail_type!r}")
