"""The one decision of the redeploy loop: given what was read, what to do and why.

A pure function (no AWS call, no clock): reconcile (the functions and ``aurelius deploy``),
``aurelius status`` and the CLI's refusals all call :func:`decide`, so the busy, not-updatable,
in-sync, failed-version and deadline rules exist here only. The table it implements, row by
row, is in docs/design.md ("The decision table").

Each state that stops an update is a :class:`Finding`; :data:`OUTCOME` maps every one of them
to the action reported, in one place. A decision to act carries everything the act sends (the
token, the new parameter values), so the one write (aurelius.core.reconcile.act) decides nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aurelius.core.model_signature import Signature, SignatureStatus
from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    ModelVersion,
    VersioningDisabled,
)
from aurelius.core.stacks import stack_parameters
from aurelius.core.tokens import (
    cancel_token,
    is_aurelius_update,
    request_token,
    token_version_digest,
    version_digest,
)

MODEL_URI_PARAMETER = "ModelS3Uri"
MODEL_VERSION_PARAMETER = "ModelVersionId"
NONCE_PARAMETER = "DeploymentNonce"
# Seconds an update aurelius started may stay UPDATE_IN_PROGRESS (computed from the settings by
# deploy-service.py). A stack without it has no deadline.
DEADLINE_PARAMETER = "RolloutDeadlineSeconds"
# "true" when the service requires signed models (set by deploy-service.py from the settings, so
# trust changes only by a deliberate stack deploy). A stack without it does not require them.
SIGNING_REQUIRED_PARAMETER = "SigningRequired"

UPDATING = "UPDATE_IN_PROGRESS"
ROLLED_BACK = "UPDATE_ROLLBACK_COMPLETE"
# States in which UpdateStack is refused and only a person can help: a failed create can only be
# deleted, a failed rollback needs ContinueUpdateRollback (stack status codes:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
# The management scripts refuse the same states (aurelius.scripts.stack_deploy imports this set).
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
    ALARM = "alarm"  # a person must act: stack not updatable or missing, bucket unversioned, access denied, unsigned
    CANCELLED = "cancelled"  # our update passed its deadline: CancelUpdateStack, CloudFormation rolls back


class Act(enum.StrEnum):
    NOTHING = "nothing"
    UPDATE = "update"  # UpdateStack to the wanted version
    CANCEL = "cancel"  # CancelUpdateStack of the running update


# ---------------------------------------------------------------------------- the named states
class Finding(enum.StrEnum):
    """A state that stops an update. The value is what logs, notifications and ``--json`` carry.

    Adding one: a member here, its row in :data:`OUTCOME`, its rule in :func:`_finding`, its
    word in aurelius.status and its refusal in the CLI's deploy (if it refuses);
    tests/unit/test_findings.py fails until each place knows it.
    """

    PAST_DEADLINE = "PastDeadline"  # an update aurelius started is UPDATE_IN_PROGRESS after its deadline
    STACK_BUSY = "StackBusy"
    STACK_NOT_UPDATABLE = "StackNotUpdatable"
    MODEL_MISSING = "ModelMissing"
    MODEL_ACCESS_DENIED = "ModelAccessDenied"
    VERSIONING_DISABLED = "VersioningDisabled"
    EMPTY_MODEL = "EmptyModel"
    STACK_MISSING = "StackMissing"
    IN_SYNC = "InSync"
    FAILED_VERSION = "FailedVersion"  # the wanted version's own rollout rolled back (the failed mark)
    NOT_AN_AURELIUS_STACK = "NotAnAureliusStack"
    NOT_SIGNED = "NotSigned"  # signing required, and the wanted version has no signature object
    SIGNATURE_ACCESS_DENIED = "SignatureAccessDenied"  # signing required, and HeadObject on the sidecar answered 403


# Every state -> the action reported.
OUTCOME: dict[Finding, Action] = {
    Finding.MODEL_MISSING: Action.SKIPPED,
    Finding.EMPTY_MODEL: Action.SKIPPED,
    Finding.FAILED_VERSION: Action.SKIPPED,
    Finding.IN_SYNC: Action.IN_SYNC,
    Finding.STACK_BUSY: Action.DEFERRED,
    Finding.PAST_DEADLINE: Action.CANCELLED,
    Finding.MODEL_ACCESS_DENIED: Action.ALARM,
    Finding.VERSIONING_DISABLED: Action.ALARM,
    Finding.STACK_MISSING: Action.ALARM,
    Finding.STACK_NOT_UPDATABLE: Action.ALARM,
    Finding.NOT_AN_AURELIUS_STACK: Action.ALARM,
    # An alarm, not a skip: an unsigned upload where signing is required is either a mistake (a
    # person must publish it signed) or an attack; the Notifier sends one message per problem.
    Finding.NOT_SIGNED: Action.ALARM,
    Finding.SIGNATURE_ACCESS_DENIED: Action.ALARM,
}
ModelProblem = ModelMissing | VersioningDisabled | ModelAccessDenied
# The model reader's exceptions are states too.
PROBLEM_FINDING: dict[type[Exception], Finding] = {
    ModelMissing: Finding.MODEL_MISSING,
    VersioningDisabled: Finding.VERSIONING_DISABLED,
    ModelAccessDenied: Finding.MODEL_ACCESS_DENIED,
}


# ---------------------------------------------------------------------------- what was read
def signing_required(parameters: Mapping[str, str]) -> bool:
    """Whether the stack requires signed models (its SigningRequired parameter is "true")."""
    return (parameters.get(SIGNING_REQUIRED_PARAMETER) or "").strip().lower() == "true"


def deadline_seconds(parameters: Mapping[str, str]) -> int | None:
    """The stack's rollout deadline in seconds; None when it has none ("", "0" or not a number)."""
    value = (parameters.get(DEADLINE_PARAMETER) or "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


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
            parameters=stack_parameters(stack),
            capabilities=tuple(stack.get("Capabilities") or ()),
            last_updated=stack.get("LastUpdatedTime"),
        )

    @property
    def deployed_version(self) -> str | None:
        return self.parameters.get(MODEL_VERSION_PARAMETER) or None

    @property
    def signing_required(self) -> bool:
        return signing_required(self.parameters)

    @property
    def busy(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")

    def runs(self, version: ModelVersion) -> bool:
        """Whether the stack pins exactly this version of this object."""
        return self.deployed_version == version.version_id and self.parameters.get(MODEL_URI_PARAMETER) == version.uri

    def rollout(self) -> Rollout | None:
        """The running update (LastUpdatedTime is its start while UPDATE_IN_PROGRESS)."""
        if self.status != UPDATING or self.last_updated is None:
            return None
        seconds = deadline_seconds(self.parameters)
        return Rollout(self.last_updated, None if seconds is None else self.last_updated + timedelta(seconds=seconds))


@dataclass(frozen=True)
class Observed:
    """Everything the decision depends on. ``last_token`` is needed only when
    :func:`needs_last_token` says so (it costs a DescribeStackEvents), ``signature`` only when
    :func:`needs_signature` says so (a HeadObject on the sidecar)."""

    stack_name: str
    model_uri: str
    now: datetime
    wanted: ModelVersion | None = None
    model_problem: ModelProblem | None = None  # why ``wanted`` could not be read
    stack: StackState | None = None  # None: the stack does not exist
    last_token: str | None = None  # ClientRequestToken of the stack's newest update
    force: bool = False  # deploy even a version marked failed (an operator's choice)
    refresh: bool = False  # start a new deployment even when in sync (ForceRefresh)
    pinned: bool = False  # an operator named the version (forward or back): token kind "force"
    signature: SignatureStatus | None = None  # the wanted version's signature object, when it was looked for


@dataclass(frozen=True)
class StackUpdate:
    """What the UpdateStack of a decision sends, besides the stack name, role and token."""

    kind: str  # the token kind: auto | force | refresh
    version: ModelVersion
    values: Mapping[str, str]  # the parameters it changes, new values
    parameters: tuple[dict[str, Any], ...]  # UpdateStack's Parameters: those values, every other key kept
    capabilities: tuple[str, ...]  # the stack's own (empty when DescribeStacks did not say)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    act: Act = Act.NOTHING
    finding: Finding | None = None  # the named state that decided; None: update
    rollout: Rollout | None = None  # the running update, when there is one
    token: str | None = None  # the ClientRequestToken the act sends (UPDATE, CANCEL)
    update: StackUpdate | None = None  # what UpdateStack sends (UPDATE)
    failed_mark: bool = False  # the wanted version's last rollout rolled back (known when the token was read)
    observed: Observed | None = field(default=None, repr=False, compare=False)  # what it was decided on


# ---------------------------------------------------------------------------- the rules
def needs_last_token(stack: StackState | None, now: datetime, force: bool = False) -> bool:
    """Whether the decision needs the newest update's token: for the failed mark (the stack
    rolled back; a forced deploy ignores the mark) and for the deadline (only an update aurelius
    started is ever cancelled)."""
    if stack is None:
        return False
    rollout = stack.rollout()
    return (stack.status == ROLLED_BACK and not force) or (rollout is not None and rollout.overdue(now))


def needs_signature(seen: Observed) -> bool:
    """Whether the decision needs the wanted version's signature status: only when the stack
    requires signing and every other rule would let the update go (so an in-sync, busy or missing
    stack costs no extra HeadObject)."""
    if seen.stack is None or seen.wanted is None or not seen.stack.signing_required:
        return False
    return _finding(replace(seen, signature=None), _failed_mark(seen), signature_checked=False) is None


def model_parameter_values(version: ModelVersion) -> dict[str, str]:
    """The two stack parameters that pin a model version."""
    return {
        MODEL_URI_PARAMETER: version.uri,
        MODEL_VERSION_PARAMETER: version.version_id,
    }


def update_parameters(current: Mapping[str, str], new_values: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Parameters list of an update with UsePreviousTemplate: new values, every other key kept.

    With UsePreviousTemplate, a parameter left out falls back to its Default
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html): list all.
    """
    return [
        {"ParameterKey": key, "ParameterValue": new_values[key]}
        if key in new_values
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in current
    ]


def decide(seen: Observed) -> Decision:
    """The decision for what was read, with everything :func:`aurelius.core.reconcile.act` sends."""
    rollout = seen.stack.rollout() if seen.stack else None
    failed_mark = _failed_mark(seen)
    found = _finding(seen, failed_mark)
    if found is not None:
        finding, reason = found
        action = OUTCOME[finding]
        if action is Action.CANCELLED:
            # The cancel's token names the version whose rollout is cancelled; CloudFormation puts it
            # on the rollback's events, so `aurelius history` can tell a deadline cancel from a person's.
            token = cancel_token(seen.last_token, seen.now.timestamp())
            return Decision(action, reason, Act.CANCEL, finding, rollout, token, observed=seen)
        return Decision(action, reason, Act.NOTHING, finding, rollout, failed_mark=failed_mark, observed=seen)
    update = _stack_update(seen)
    return Decision(
        Action.STARTED,
        f"update started to {update.version.version_id}",
        Act.UPDATE,
        None,
        rollout,
        request_token(update.kind, update.version.version_id, seen.now.timestamp()),
        update,
        failed_mark,
        seen,
    )


def _failed_mark(seen: Observed) -> bool:
    return (
        seen.stack is not None
        and seen.wanted is not None
        and seen.stack.status == ROLLED_BACK
        and token_version_digest(seen.last_token) == version_digest(seen.wanted.version_id)
    )


def _stack_update(seen: Observed) -> StackUpdate:
    stack, wanted = seen.stack, seen.wanted
    assert stack is not None and wanted is not None
    in_sync = stack.runs(wanted)
    kind = "force" if seen.force or seen.pinned else ("refresh" if in_sync else "auto")
    values = model_parameter_values(wanted)
    if in_sync and NONCE_PARAMETER in stack.parameters:
        # A refresh changes nothing else: the nonce is what makes it a change (a new deployment).
        values[NONCE_PARAMETER] = request_token(kind, wanted.version_id, seen.now.timestamp())
    return StackUpdate(kind, wanted, values, tuple(update_parameters(stack.parameters, values)), stack.capabilities)


def _finding(seen: Observed, failed_mark: bool, signature_checked: bool = True) -> tuple[Finding, str] | None:
    """The state that decides, and why; None when the stack should be updated. First match wins,
    in the order of the decision table (docs/design.md, "The decision table").

    signature_checked=False: leave the signature rule out (:func:`needs_signature` asks whether
    every other rule lets the update go).
    """
    stack, now = seen.stack, seen.now
    rollout = stack.rollout() if stack else None
    # 1. A stuck rollout is cancelled whatever S3 says, but only if aurelius started it: a
    #    person's update is theirs to stop.
    if stack and rollout and rollout.overdue(now):
        if is_aurelius_update(seen.last_token):
            return Finding.PAST_DEADLINE, (
                f"stack is {UPDATING} past its deadline ({rollout.describe(now)}): cancelling; CloudFormation rolls back"
            )
        return Finding.STACK_BUSY, (
            f"stack is {UPDATING} past its deadline ({rollout.describe(now)}), but aurelius did not start this "
            "update: it is never cancelled; the stack status event or the schedule retries"
        )
    # 2. A stack only a person can repair, whatever S3 says.
    if stack and stack.status in NOT_UPDATABLE:
        return Finding.STACK_NOT_UPDATABLE, f"stack is {stack.status} and cannot be updated; a person must repair it"
    # 3. The model object.
    if (model := _model_finding(seen)) is not None:
        return model
    wanted = seen.wanted
    assert wanted is not None
    # 4. The stack.
    if stack is None:
        return Finding.STACK_MISSING, f"service stack {seen.stack_name} missing; deploy it first"
    if stack.busy:
        running = f" ({rollout.describe(now)})" if rollout else ""
        return Finding.STACK_BUSY, f"stack is {stack.status}{running}; the stack status event or the schedule retries"
    if stack.runs(wanted) and not seen.refresh:
        return Finding.IN_SYNC, "deployed version is the current version"
    if failed_mark and not seen.force:
        return Finding.FAILED_VERSION, (
            "this version's rollout rolled back; upload a newer version or force it (aurelius deploy)"
        )
    missing = sorted({MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER} - set(stack.parameters))
    if missing:
        return Finding.NOT_AN_AURELIUS_STACK, f"stack has no parameter {missing[0]}: not an aurelius service stack"
    # 5. The signature, last: it costs a HeadObject, read only when everything else says update.
    return _signature_finding(seen) if signature_checked else None


def _model_finding(seen: Observed) -> tuple[Finding, str] | None:
    """Rule 3: the model object could not be read, or is empty."""
    if seen.model_problem is not None:
        finding = PROBLEM_FINDING[type(seen.model_problem)]
        if finding is Finding.MODEL_MISSING:
            return finding, f"{seen.model_problem}; the service keeps its pinned version"
        return finding, str(seen.model_problem)
    wanted = seen.wanted
    assert wanted is not None, "Observed needs wanted or model_problem"
    if wanted.size == 0:
        return Finding.EMPTY_MODEL, f"model object {wanted.uri} version {wanted.version_id} is empty"
    return None


def _signature_finding(seen: Observed) -> tuple[Finding, str] | None:
    """Rule 12: where the stack requires signing, the wanted version must have a signature object.
    Presence only: the model server verifies the signature before it unpickles anything."""
    stack, wanted, signature = seen.stack, seen.wanted, seen.signature
    if stack is None or wanted is None or not stack.signing_required:
        return None
    if signature is None:  # not looked for: never deploy unchecked where signing is required
        return Finding.NOT_SIGNED, f"not signed: the signature of version {wanted.version_id} was not checked"
    if signature.state is Signature.UNREADABLE:
        return Finding.SIGNATURE_ACCESS_DENIED, signature.reason
    if not signature.signed:
        return Finding.NOT_SIGNED, f"not signed: {signature.reason}; signing is required ({SIGNING_REQUIRED_PARAMETER})"
    return None


# ---------------------------------------------------------------------------- CloudFormation's answers
def update_refused(message: str) -> Decision | None:
    """The decision when UpdateStack answers ``message`` (None: an unexpected error, raise it)."""
    if "No updates are to be performed" in message:
        finding, reason = Finding.IN_SYNC, "CloudFormation: no updates are to be performed"
    elif "_IN_PROGRESS state" in message:
        finding, reason = Finding.STACK_BUSY, message  # went busy between DescribeStacks and UpdateStack
    elif "does not exist" in message:
        finding, reason = Finding.STACK_MISSING, message
    elif "can not be updated" in message or "cannot be updated" in message:
        finding, reason = Finding.STACK_NOT_UPDATABLE, message
    else:
        return None
    return Decision(OUTCOME[finding], reason, Act.NOTHING, finding)


def cancel_refused(message: str) -> Decision | None:
    """The decision when CancelUpdateStack answers ``message`` (None: unexpected, raise it).

    CloudFormation cancels only a stack in UPDATE_IN_PROGRESS
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html):
    an update that ended between DescribeStacks and the cancel is answered with "CancelUpdateStack
    cannot be called from current stack status", and its status change runs reconcile again.
    """
    if "cannot be called from current stack status" in message:
        reason = f"the update ended before the cancel ({message}); the stack status event or the schedule retries"
        return Decision(OUTCOME[Finding.STACK_BUSY], reason, Act.NOTHING, Finding.STACK_BUSY)
    return None


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
