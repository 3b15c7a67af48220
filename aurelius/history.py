"""Which model versions the service stack ran, read from AWS only (no local record).

The record is the stack's own event history. reconcile() starts every update with a
ClientRequestToken ``aurelius-{kind}-{sha256(version_id)[:16]}-{unix time}`` (aurelius.core.tokens),
and CloudFormation tags every event of that update with it. So each stack-level
UPDATE_IN_PROGRESS carrying such a token is one deploy: when it started, which kind
(auto, force, refresh) and the digest of the version it tried. The stack-level event that ends
it (UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED) gives when and how it
ended. A rollback that a cancel started begins with UPDATE_ROLLBACK_IN_PROGRESS, reason "User
Initiated"; when the redeployer cancelled an update past its deadline, that event carries its
``aurelius-cancel-...`` token (aurelius.core.tokens) and the update ended ``cancelled
(deadline)``. The model bucket's object versions (ListObjectVersions) turn digests back into
version ids, with each version's upload time and size.

The stack's creation carries no aurelius token (deploy-service.py creates it), so its version
is only known while no update has happened since: then it is the stack's current parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aurelius.core.decision import DEADLINE_PARAMETER, MODEL_VERSION_PARAMETER
from aurelius.core.tokens import TOKEN_PATTERN, is_aurelius_cancel, is_stack_event, version_digest
from aurelius.stack_deploy import stack_parameters

OUTCOMES = {
    "UPDATE_COMPLETE": "completed",
    "UPDATE_ROLLBACK_COMPLETE": "rolled back",
    "UPDATE_ROLLBACK_FAILED": "rollback failed",
}
IN_PROGRESS, UNKNOWN, CREATED = "in progress", "unknown", "created"
# How an update that rolled back after a cancel is shown: by the redeployer at the deadline, or
# by someone else (the console, the CLI).
CANCELLED_DEADLINE, CANCELLED = "cancelled (deadline)", "cancelled"
# CloudFormation's reason on the stack's UPDATE_ROLLBACK_IN_PROGRESS after CancelUpdateStack.
CANCEL_REASON = "User Initiated"


@dataclass(frozen=True)
class ObjectVersion:
    """One S3 version of the model object."""

    version_id: str
    last_modified: datetime | None = None
    size: int | None = None
    is_latest: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "last_modified": _iso(self.last_modified),
            "size": self.size,
        }


@dataclass(frozen=True)
class Deploy:
    """One model deploy of the service stack: an aurelius update, or the stack's creation."""

    kind: str  # auto | force | refresh | created
    started: datetime | None
    ended: datetime | None
    outcome: str  # completed | rolled back | cancelled (deadline) | cancelled | rollback failed | in progress | created | unknown
    version_id: str | None  # None when no object version has the digest (or the creation's is unknown)
    digest: str | None
    token: str | None
    model: ObjectVersion | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "outcome": self.outcome,
            "version_id": self.version_id,
            "version_digest": self.digest,
            "client_request_token": self.token,
            "model": self.model.as_dict() if self.model else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def model_versions(s3, bucket: str, key: str) -> list[ObjectVersion]:
    """Every stored version of the model object (newest first; delete markers left out)."""
    found: list[ObjectVersion] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Versions", []):
            if item.get("Key") != key:  # the prefix also matches models/model.pkl.bak
                continue
            found.append(
                ObjectVersion(item["VersionId"], item.get("LastModified"), item.get("Size"), bool(item.get("IsLatest")))
            )
    return found


def _stack_events(cfn, stack_name: str) -> Iterator[dict[str, Any]]:
    """The stack's events, newest first, one page at a time."""
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        yield from page.get("StackEvents", [])


def _is_stack_level(event: dict[str, Any], stack: dict[str, Any]) -> bool:
    return is_stack_event(event, stack["StackName"])


def _cancelled_by(event: dict[str, Any], started: datetime | None, deadline_seconds: int | None) -> str | None:
    """How a stack-level UPDATE_ROLLBACK_IN_PROGRESS started: a cancel by aurelius, by someone
    else, or neither. The cancel's own token says it was the redeployer's; should the rollback's
    events carry the update's token instead, a cancel that came after the stack's current
    deadline is taken for the redeployer's too (it would have cancelled it)."""
    if is_aurelius_cancel(event.get("ClientRequestToken")):
        return CANCELLED_DEADLINE
    if CANCEL_REASON.lower() not in (event.get("ResourceStatusReason") or "").lower():
        return None
    moment = event.get("Timestamp")
    if deadline_seconds and started and moment and (moment - started).total_seconds() > deadline_seconds:
        return CANCELLED_DEADLINE
    return CANCELLED


def read_history(cfn, s3, stack: dict[str, Any], bucket: str, key: str, limit: int | None = None) -> list[Deploy]:
    """The stack's model deploys, newest first (at most ``limit``; None or 0 reads every event).

    ``stack`` is the stack as DescribeStacks returns it. With a limit, paging stops once that
    many aurelius updates are found (their end events are newer, so already read).
    """
    events: list[dict[str, Any]] = []
    starts = 0
    for event in _stack_events(cfn, stack["StackName"]):
        events.append(event)
        if _is_stack_level(event, stack) and event.get("ResourceStatus") == "UPDATE_IN_PROGRESS":
            if TOKEN_PATTERN.match(event.get("ClientRequestToken") or ""):
                starts += 1
                if limit and starts >= limit:
                    break

    deadline = stack_parameters(stack).get(DEADLINE_PARAMETER, "")
    deadline_seconds = int(deadline) if deadline.isdigit() else None
    # Oldest to newest: an update's end is the next stack-level terminal event after its start.
    deploys: list[dict[str, Any]] = []
    open_update: dict[str, Any] | None = None  # the aurelius update waiting for its end
    any_update = False
    created: dict[str, Any] | None = None
    for event in reversed(events):
        if not _is_stack_level(event, stack):
            continue
        status = event.get("ResourceStatus")
        if status == "CREATE_COMPLETE":
            created = {"ended": event.get("Timestamp"), "started": (created or {}).get("started")}
        elif status == "CREATE_IN_PROGRESS":
            created = {"started": event.get("Timestamp"), "ended": None}
        elif status == "UPDATE_IN_PROGRESS":
            any_update = True
            if open_update is not None:
                open_update["outcome"] = UNKNOWN  # its end was not recorded; should not happen
            token = event.get("ClientRequestToken") or ""
            match = TOKEN_PATTERN.match(token)
            open_update = None
            if match:
                open_update = {
                    "kind": match.group(1),
                    "digest": match.group(2),
                    "token": token,
                    "started": event.get("Timestamp"),
                }
                deploys.append(open_update)
        elif status == "UPDATE_ROLLBACK_IN_PROGRESS":
            cancelled = (
                _cancelled_by(event, open_update["started"], deadline_seconds) if open_update is not None else None
            )
            if open_update is not None and cancelled:
                open_update["cancelled"] = cancelled
        elif status in OUTCOMES:
            if open_update is not None:
                open_update["ended"] = event.get("Timestamp")
                rolled_back = status == "UPDATE_ROLLBACK_COMPLETE"
                open_update["outcome"] = (
                    open_update.get("cancelled", OUTCOMES[status]) if rolled_back else OUTCOMES[status]
                )
            open_update = None

    versions = model_versions(s3, bucket, key)
    by_digest = {version_digest(v.version_id): v for v in versions}
    by_id = {v.version_id: v for v in versions}

    result: list[Deploy] = []
    for raw in reversed(deploys):
        model = by_digest.get(raw["digest"])
        result.append(
            Deploy(
                kind=raw["kind"],
                started=raw["started"],
                ended=raw.get("ended"),
                outcome=raw.get("outcome", IN_PROGRESS if raw is open_update else UNKNOWN),
                version_id=model.version_id if model else None,
                digest=raw["digest"],
                token=raw["token"],
                model=model,
            )
        )
    if created is not None and created.get("ended") is not None:
        # Every event back to the creation was read, so any_update is the whole truth.
        version_id = None if any_update else stack_parameters(stack).get(MODEL_VERSION_PARAMETER)
        result.append(
            Deploy(
                kind=CREATED,
                started=created.get("started"),
                ended=created["ended"],
                outcome=CREATED,
                version_id=version_id,
                digest=version_digest(version_id) if version_id else None,
                token=None,
                model=by_id.get(version_id) if version_id else None,
            )
        )
    return result[:limit] if limit else result


def last_deploy(cfn, s3, stack: dict[str, Any], bucket: str, key: str) -> Deploy | None:
    """The newest model deploy of the stack (an aurelius update, else its creation)."""
    found = read_history(cfn, s3, stack, bucket, key, limit=1)
    return found[0] if found else None
