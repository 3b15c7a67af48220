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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aurelius.core.decision import StackState, deadline_seconds
from aurelius.core.model_signature import SignatureStatus, signature_status
from aurelius.core.model_version import ModelMissing, VersioningDisabled, current_model_version
from aurelius.core.tokens import Token, is_stack_event, parse, version_digest
from aurelius.formatting import when

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

    def describe(self) -> str:
        """One line for people: "completed 2026-11-20 09:05:00Z (auto)", "created ..."."""
        if self.kind == CREATED:
            return f"created {when(self.ended)}"
        return f"{self.outcome} {when(self.ended or self.started)} ({self.kind})"

    def version_label(self) -> str:
        if self.version_id:
            return self.version_id
        if self.digest:
            return f"unknown (digest {self.digest}; version deleted from S3)"
        return "unknown (updated since the stack was created)"


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


def _cancelled_by(event: dict[str, Any], started: datetime | None, deadline: int | None) -> str | None:
    """How a stack-level UPDATE_ROLLBACK_IN_PROGRESS started: a cancel by aurelius, by someone
    else, or neither. The cancel's own token says it was the redeployer's; should the rollback's
    events carry the update's token instead, a cancel that came after the stack's current
    deadline is taken for the redeployer's too (it would have cancelled it)."""
    token = parse(event.get("ClientRequestToken"))
    if token is not None and not token.is_update:
        return CANCELLED_DEADLINE
    if CANCEL_REASON.lower() not in (event.get("ResourceStatusReason") or "").lower():
        return None
    moment = event.get("Timestamp")
    if deadline and started and moment and (moment - started).total_seconds() > deadline:
        return CANCELLED_DEADLINE
    return CANCELLED


@dataclass
class _Update:
    """An aurelius update while its events are folded in."""

    token: Token
    raw_token: str
    started: datetime | None
    ended: datetime | None = None
    outcome: str | None = None
    cancelled: str | None = None  # how its rollback started, when a cancel started it


@dataclass
class _Timeline:
    """The stack-level events folded in, oldest to newest: an update's end is the next
    stack-level terminal event after its start."""

    deadline: int | None
    updates: list[_Update] = field(default_factory=list)
    open: _Update | None = None  # the aurelius update waiting for its end
    any_update: bool = False
    create_started: datetime | None = None
    created: datetime | None = None

    def add(self, event: dict[str, Any]) -> _Timeline:
        status, moment = event.get("ResourceStatus"), event.get("Timestamp")
        if status == "CREATE_IN_PROGRESS":
            self.create_started, self.created = moment, None
        elif status == "CREATE_COMPLETE":
            self.created = moment
        elif status == "UPDATE_IN_PROGRESS":
            self._start(event.get("ClientRequestToken") or "", moment)
        elif status == "UPDATE_ROLLBACK_IN_PROGRESS" and self.open is not None:
            self.open.cancelled = _cancelled_by(event, self.open.started, self.deadline) or self.open.cancelled
        elif status in OUTCOMES:
            if self.open is not None:
                self.open.ended = moment
                rolled_back = status == "UPDATE_ROLLBACK_COMPLETE"
                self.open.outcome = (self.open.cancelled or OUTCOMES[status]) if rolled_back else OUTCOMES[status]
            self.open = None
        return self

    def _start(self, raw_token: str, moment: datetime | None) -> None:
        self.any_update = True
        if self.open is not None:
            self.open.outcome = UNKNOWN  # its end was not recorded; should not happen
        token = parse(raw_token)
        self.open = _Update(token, raw_token, moment) if token is not None and token.is_update else None
        if self.open is not None:
            self.updates.append(self.open)


def _newest_events(cfn, stack_name: str, limit: int | None) -> list[dict[str, Any]]:
    """The stack-level events, newest first; with a limit, paging stops once that many aurelius
    updates started (their end events are newer, so already read)."""
    events: list[dict[str, Any]] = []
    starts = 0
    for event in _stack_events(cfn, stack_name):
        if not is_stack_event(event, stack_name):
            continue
        events.append(event)
        token = parse(event.get("ClientRequestToken"))
        if event.get("ResourceStatus") == "UPDATE_IN_PROGRESS" and token is not None and token.is_update:
            starts += 1
            if limit and starts >= limit:
                break
    return events


def _fold(events: Iterable[dict[str, Any]], deadline: int | None) -> _Timeline:
    timeline = _Timeline(deadline)
    for event in events:
        timeline = timeline.add(event)
    return timeline


def read_history(cfn, s3, stack: StackState, bucket: str, key: str, limit: int | None = None) -> list[Deploy]:
    """The stack's model deploys, newest first (at most ``limit``; None or 0 reads every event)."""
    timeline = _fold(reversed(_newest_events(cfn, stack.name, limit)), deadline_seconds(stack.parameters))
    versions = model_versions(s3, bucket, key)
    by_digest = {version_digest(v.version_id): v for v in versions}
    result = [
        _deploy(update, by_digest.get(update.token.digest), update is timeline.open)
        for update in reversed(timeline.updates)
    ]
    if timeline.created is not None:
        # Every event back to the creation was read, so any_update is the whole truth.
        version_id = None if timeline.any_update else stack.deployed_version
        model = next((v for v in versions if v.version_id == version_id), None) if version_id else None
        digest = version_digest(version_id) if version_id else None
        result.append(
            Deploy(CREATED, timeline.create_started, timeline.created, CREATED, version_id, digest, None, model)
        )
    return result[:limit] if limit else result


def _deploy(update: _Update, model: ObjectVersion | None, still_open: bool) -> Deploy:
    return Deploy(
        kind=update.token.kind,
        started=update.started,
        ended=update.ended,
        outcome=update.outcome or (IN_PROGRESS if still_open else UNKNOWN),
        version_id=model.version_id if model else None,
        digest=update.token.digest,
        token=update.raw_token,
        model=model,
    )


def last_deploy(cfn, s3, stack: StackState, bucket: str, key: str) -> Deploy | None:
    """The newest model deploy of the stack (an aurelius update, else its creation)."""
    found = read_history(cfn, s3, stack, bucket, key, limit=1)
    return found[0] if found else None


def version_signatures(s3, bucket: str, key: str, version_ids: Iterable[str]) -> dict[str, SignatureStatus]:
    """Whether each version has a signature object. ListObjectVersions carries no metadata, so
    each distinct version costs a HeadObject (its aurelius-sha256) and one on its sidecar: the
    callers bound it (``aurelius history --limit``). A version deleted since is left out."""
    found: dict[str, SignatureStatus] = {}
    for version_id in dict.fromkeys(version_ids):
        try:
            found[version_id] = signature_status(s3, current_model_version(s3, bucket, key, version_id))
        except (ModelMissing, VersioningDisabled):
            continue
    return found
