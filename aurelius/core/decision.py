"""The one decision of the redeploy loop: given what was read, what to do and why.

A pure function (no AWS call, no clock): reconcile (the functions and ``aurelius deploy``),
``aurelius status`` and the CLI's refusals all call :func:`decide`, so the busy, not-updatable,
in-sync, failed-version and deadline rules exist here only. The table it implements, row by
row, is in docs/design.md ("The decision table").

Each state that stops an update is a small named exception; :data:`OUTCOME` maps every one of
them (and the model reader's) to the action reported, in one place.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    ModelVersion,
    VersioningDisabled,
)
from aurelius.core.tokens import (
    is_aurelius_update,
    token_version_digest,
    version_digest,
)

MODEL_URI_PARAMETER = "ModelS3Uri"
MODEL_VERSION_PARAMETER = "ModelVersionId"
NONCE_PARAMETER = "DeploymentNonce"
# Seconds an update aurelius started may stay UPDATE_IN_PROGRESS (computed from the settings by
# deploy-service.py). A stack without it has no deadline.
DEADLINE_PARAMETER = "RolloutDeadlineSeconds"

UPDATING = "UPDATE_IN_PROGRESS"
ROLLED_BACK = "UPDATE_ROLLBACK_COMPLETE"
# States in which UpdateStack is refused and only a person can help: a failed create can only be
# deleted, a failed rollback needs ContinueUpdateRollback (stack status codes:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
# The management scripts refuse the same states (aurelius.stack_deploy imports this set).
NOT_UPDATABLE = frozenset(
    {
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
    }
)


class Action(enum.StrEnum):
    STARTED = "started"  # UpdateStack accepted: the rollout is CloudFormation's now
    IN_SYNC = "in-sync"  # nothing to do
    SKIPPED = "skipped"  # a reason not to deploy (failed version, empty or missing model)
    DEFERRED = "deferred"  # stack busy: the status-change event or the schedule brings us back
    ALARM = "alarm"  # a person must act: stack not updatable or missing, bucket unversioned, access denied
    CANCELLED = "cancelled"  # our update passed its deadline: CancelUpdateStack, CloudFormation rolls back


class Act(enum.StrEnum):
    NOTHING = "nothing"
    UPDATE = "update"  # UpdateStack to the wanted version
    CANCEL = "cancel"  # CancelUpdateStack of the running update


# ---------------------------------------------------------------------------- the named states
class Finding(Exception):
    """A state that decides the outcome; str() is the reason reported."""


class StackMissing(Finding):
    pass


class StackNotUpdatable(Finding):
    pass


class StackBusy(Finding):
    pass


class PastDeadline(Finding):
    """An update aurelius started is still UPDATE_IN_PROGRESS after its deadline."""


class InSync(Finding):
    pass


class EmptyModel(Finding):
    pass


class FailedVersion(Finding):
    """The wanted version's own rollout rolled back (the failed mark)."""


class NotAnAureliusStack(Finding):
    pass


# Every state -> the action reported. The model reader's exceptions are states too.
OUTCOME: dict[type[Exception], Action] = {
    ModelMissing: Action.SKIPPED,
    EmptyModel: Action.SKIPPED,
    FailedVersion: Action.SKIPPED,
    InSync: Action.IN_SYNC,
    StackBusy: Action.DEFERRED,
    PastDeadline: Action.CANCELLED,
    ModelAccessDenied: Action.ALARM,
    VersioningDisabled: Action.ALARM,
    StackMissing: Action.ALARM,
    StackNotUpdatable: Action.ALARM,
    NotAnAureliusStack: Action.ALARM,
}
ModelProblem = ModelMissing | VersioningDisabled | ModelAccessDenied


# ---------------------------------------------------------------------------- what was read
@dataclass(frozen=True)
class Rollout:
    """The update running now: when it started and, if the stack carries one, its deadline."""

    started: datetime
    deadline: datetime | None  # None: the stack has no RolloutDeadlineSeconds parameter

    def elapsed(self, now: datetime) -> timedelta:
        return now - self.started

    def overdue(self, now: datetime) -> bool:
        return self.deadline is not None and now > self.deadline

    def describe(self, now: datetime) -> str:
        """For logs and people: "running 5m00s, deadline 2026-11-26 12:30:00Z (25m00s left)"."""
        ran = f"running {_duration(self.elapsed(now))}"
        if self.deadline is None:
            return f"{ran}, no deadline (the stack has no {DEADLINE_PARAMETER} parameter)"
        left = self.deadline - now
        when = f"passed {_duration(-left)} ago" if left < timedelta(0) else f"{_duration(left)} left"
        return f"{ran}, deadline {self.deadline:%Y-%m-%d %H:%M:%SZ} ({when})"


@dataclass(frozen=True)
class StackState:
    """What DescribeStacks says about the service stack."""

    name: str
    status: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    last_updated: datetime | None = None

    @classmethod
    def from_description(cls, stack: Mapping[str, Any]) -> StackState:
        return cls(
            name=stack["StackName"],
            status=stack["StackStatus"],
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            capabilities=tuple(stack.get("Capabilities") or ()),
            last_updated=stack.get("LastUpdatedTime"),
        )

    @property
    def deployed_version(self) -> str | None:
        return self.parameters.get(MODEL_VERSION_PARAMETER) or None

    @property
    def busy(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")

    def rollout(self) -> Rollout | None:
        """The running update (LastUpdatedTime is its start while UPDATE_IN_PROGRESS)."""
        if self.status != UPDATING or self.last_updated is None:
            return None
        seconds = (self.parameters.get(DEADLINE_PARAMETER) or "").strip()
        deadline = (
            self.last_updated + timedelta(seconds=int(seconds)) if seconds.isdigit() and int(seconds) > 0 else None
        )
        return Rollout(self.last_updated, deadline)


@dataclass(frozen=True)
class Observed:
    """Everything the decision depends on. ``last_token`` is needed only when
    :func:`needs_last_token` says so (it costs a DescribeStackEvents)."""

    stack_name: str
    model_uri: str
    now: datetime
    wanted: ModelVersion | None = None
    model_problem: ModelProblem | None = None  # why ``wanted`` could not be read
    stack: StackState | None = None  # None: the stack does not exist
    last_token: str | None = None  # ClientRequestToken of the stack's newest update
    force: bool = False  # deploy even a version marked failed (an operator's choice)
    refresh: bool = False  # start a new deployment even when in sync (ForceRefresh)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    act: Act = Act.NOTHING
    finding: str | None = None  # the named state that decided (its class name); None: update
    rollout: Rollout | None = None  # the running update, when there is one


# ---------------------------------------------------------------------------- the rules
def needs_last_token(stack: StackState | None, now: datetime, force: bool = False) -> bool:
    """Whether the decision needs the newest update's token: for the failed mark (the stack
    rolled back; a forced deploy ignores the mark) and for the deadline (only an update aurelius
    started is ever cancelled)."""
    if stack is None:
        return False
    rollout = stack.rollout()
    return (stack.status == ROLLED_BACK and not force) or (rollout is not None and rollout.overdue(now))


def decide(seen: Observed) -> Decision:
    """The decision for what was read."""
    rollout = seen.stack.rollout() if seen.stack else None
    try:
        _check(seen)
    except tuple(OUTCOME) as state:
        action = OUTCOME[type(state)]
        act = Act.CANCEL if action is Action.CANCELLED else Act.NOTHING
        return Decision(action, str(state), act, type(state).__name__, rollout)
    assert seen.wanted is not None
    return Decision(
        Action.STARTED,
        f"update started to {seen.wanted.version_id}",
        Act.UPDATE,
        None,
        rollout,
    )


def _check(seen: Observed) -> None:
    """Raise the state that decides; return when the stack should be updated. First match wins."""
    stack, now = seen.stack, seen.now
    rollout = stack.rollout() if stack else None
    # 1. A stuck rollout is cancelled whatever S3 says, but only if aurelius started it: a
    #    person's update is theirs to stop.
    if stack and rollout and rollout.overdue(now):
        if is_aurelius_update(seen.last_token):
            raise PastDeadline(
                f"stack is {UPDATING} past its deadline ({rollout.describe(now)}): cancelling; CloudFormation rolls back"
            )
        raise StackBusy(
            f"stack is {UPDATING} past its deadline ({rollout.describe(now)}), but aurelius did not start this "
            "update: it is never cancelled; the stack status event or the schedule retries"
        )
    # 2. A stack only a person can repair, whatever S3 says.
    if stack and stack.status in NOT_UPDATABLE:
        raise StackNotUpdatable(f"stack is {stack.status} and cannot be updated; a person must repair it")
    # 3. The model object.
    if seen.model_problem is not None:
        if isinstance(seen.model_problem, ModelMissing):
            raise ModelMissing(f"{seen.model_problem}; the service keeps its pinned version")
        raise seen.model_problem
    wanted = seen.wanted
    assert wanted is not None, "Observed needs wanted or model_problem"
    if wanted.size == 0:
        raise EmptyModel(f"model object {wanted.uri} version {wanted.version_id} is empty")
    # 4. The stack.
    if stack is None:
        raise StackMissing(f"service stack {seen.stack_name} missing; deploy it first")
    if stack.busy:
        running = f" ({rollout.describe(now)})" if rollout else ""
        raise StackBusy(f"stack is {stack.status}{running}; the stack status event or the schedule retries")
    in_sync = stack.deployed_version == wanted.version_id and stack.parameters.get(MODEL_URI_PARAMETER) == wanted.uri
    if in_sync and not seen.refresh:
        raise InSync("deployed version is the current version")
    if (
        not seen.force
        and stack.status == ROLLED_BACK
        and token_version_digest(seen.last_token) == version_digest(wanted.version_id)
    ):
        raise FailedVersion("this version's rollout rolled back; upload a newer version or force it (aurelius deploy)")
    missing = sorted({MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER} - set(stack.parameters))
    if missing:
        raise NotAnAureliusStack(f"stack has no parameter {missing[0]}: not an aurelius service stack")


# ---------------------------------------------------------------------------- CloudFormation's answers
def update_refused(message: str) -> Decision | None:
    """The decision when UpdateStack answers ``message`` (None: an unexpected error, raise it)."""
    if "No updates are to be performed" in message:
        state: Finding = InSync("CloudFormation: no updates are to be performed")
    elif "_IN_PROGRESS state" in message:
        state = StackBusy(message)  # went busy between DescribeStacks and UpdateStack
    elif "does not exist" in message:
        state = StackMissing(message)
    elif "can not be updated" in message or "cannot be updated" in message:
        state = StackNotUpdatable(message)
    else:
        return None
    return Decision(OUTCOME[type(state)], str(state), Act.NOTHING, type(state).__name__)


def cancel_refused(message: str) -> Decision | None:
    """The decision when CancelUpdateStack answers ``message`` (None: unexpected, raise it).

    CloudFormation cancels only a stack in UPDATE_IN_PROGRESS
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html):
    an update that ended between DescribeStacks and the cancel is answered with "CancelUpdateStack
    cannot be called from current stack status", and its status change runs reconcile again.
    """
    if "cannot be called from current stack status" in message:
        state = StackBusy(
            f"the update ended before the cancel ({message}); the stack status event or the schedule retries"
        )
        return Decision(OUTCOME[type(state)], str(state), Act.NOTHING, type(state).__name__)
    return None


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
