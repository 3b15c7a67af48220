"""The reconcile step: make the service stack run the model version S3 says is current.

Level-triggered (docs/design.md, "The redeploy loop"): an event is only a wake-up call. Every
call is three steps, each one function: :func:`observe` reads what is wanted (HeadObject) and
what is deployed (DescribeStacks), :func:`aurelius.core.decision.decide` (pure) says what to do,
and :func:`act` does at most one thing: UpdateStack, or CancelUpdateStack for an update of ours
stuck past its deadline. ``aurelius status`` runs the first two, ``aurelius deploy`` all three
on one observation. So duplicates, reordering and bursts cannot deploy an old model, and a busy
stack loses nothing. It never waits for the rollout (Lambda stops at 15 minutes; a rollout can
take longer): CloudFormation and the ECS circuit breaker own it, and the stack's status-change
event wakes us again.

The handlers map outcomes to logs, metrics and notifications in one place
(aurelius.core.lambda_runtime).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from aurelius.core.aws_errors import error_message
from aurelius.core.decision import (
    Act,
    Action,
    Decision,
    Observed,
    StackState,
    cancel_refused,
    decide,
    needs_last_token,
    needs_signature,
    update_refused,
)
from aurelius.core.model_signature import signature_status
from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    VersioningDisabled,
    current_model_version,
)
from aurelius.core.stacks import describe_stack
from aurelius.core.tokens import last_update_token


@dataclass(frozen=True)
class Target:
    """Which stack follows which model object, and how we may update it."""

    stack_name: str
    bucket: str
    key: str
    role_arn: str | None = None
    # Used when DescribeStacks does not report the stack's capabilities.
    default_capabilities: tuple[str, ...] = ("CAPABILITY_NAMED_IAM",)  # the stack names its roles

    @property
    def model_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Outcome:
    action: Action
    reason: str
    stack_name: str
    wanted_version: str | None = None
    deployed_version: str | None = None
    stack_status: str | None = None
    token: str | None = None
    finding: str | None = None  # the named state that decided (aurelius.core.decision.Finding), if any

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        data["finding"] = str(self.finding) if self.finding else None
        return data


# ---------------------------------------------------------------------------- observe
def observe(
    target: Target,
    *,
    s3,
    cfn,
    version_id: str | None = None,
    force: bool = False,
    refresh: bool = False,
    now: datetime | None = None,
    failed_mark: bool = False,
) -> Observed:
    """Read what the decision needs: the wanted version (or why it cannot be read), the stack,
    the newest update's token when the decision will look at it, and the wanted version's
    signature object when the stack requires signing and the decision would otherwise update.
    One HeadObject, one DescribeStacks, at most one DescribeStackEvents, at most one HeadObject
    on the signature sidecar; nothing else.

    version_id: this version instead of the current one (an operator's forward or back).
    failed_mark: read the token for a forced deploy too, to show a rolled-back version's mark.
    """
    now = now or datetime.now(UTC)
    wanted, problem = None, None
    try:
        wanted = current_model_version(s3, target.bucket, target.key, version_id)
    except (ModelMissing, VersioningDisabled, ModelAccessDenied) as exc:
        problem = exc
    described = describe_stack(cfn, target.stack_name)
    stack = StackState.from_description(described) if described else None
    needed = needs_last_token(stack, now, force and not failed_mark)
    token = last_update_token(cfn, target.stack_name) if needed else None
    seen = Observed(
        target.stack_name,
        target.model_uri,
        now,
        wanted,
        problem,
        stack,
        token,
        force=force,
        refresh=refresh,
        pinned=version_id is not None,
    )
    if needs_signature(seen):
        assert wanted is not None
        seen = replace(seen, signature=signature_status(s3, wanted))
    return seen


# ---------------------------------------------------------------------------- act
def act(target: Target, decision: Decision, *, cfn) -> Outcome:
    """Do what ``decision`` says, with what it carries: at most one write (UpdateStack or
    CancelUpdateStack). CloudFormation's refusals become their decisions; any other error is raised."""
    if decision.act is Act.CANCEL:
        try:
            cfn.cancel_update_stack(StackName=target.stack_name, ClientRequestToken=decision.token)
        except ClientError as exc:
            return _outcome(target, decision, refused=_refused(cancel_refused, exc))
        return _outcome(target, decision, decision.token)
    if decision.act is Act.UPDATE:
        update = decision.update
        assert update is not None
        kwargs: dict[str, Any] = {
            "StackName": target.stack_name,
            "UsePreviousTemplate": True,
            "Parameters": list(update.parameters),
            "Capabilities": list(update.capabilities) or list(target.default_capabilities),
            "ClientRequestToken": decision.token,
        }
        if target.role_arn:
            kwargs["RoleARN"] = target.role_arn
        try:
            cfn.update_stack(**kwargs)
        except ClientError as exc:
            return _outcome(target, decision, refused=_refused(update_refused, exc))
        return _outcome(target, decision, decision.token)
    return _outcome(target, decision)


def _refused(answer: Callable[[str], Decision | None], exc: ClientError) -> Decision:
    refused = answer(error_message(exc))
    if refused is None:
        raise exc
    return refused


def _outcome(target: Target, decision: Decision, token: str | None = None, refused: Decision | None = None) -> Outcome:
    seen = decision.observed
    stack = seen.stack if seen else None
    wanted = seen.wanted if seen else None
    reported = refused or decision
    return Outcome(
        reported.action,
        reported.reason,
        target.stack_name,
        wanted_version=wanted.version_id if wanted else None,
        deployed_version=stack.deployed_version if stack else None,
        stack_status=stack.status if stack else None,
        token=token,
        finding=reported.finding,
    )


# ---------------------------------------------------------------------------- one step
def reconcile(
    target: Target,
    *,
    s3,
    cfn,
    version_id: str | None = None,
    force: bool = False,
    refresh: bool = False,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """One reconcile step: observe, decide, act. Raises only for unexpected AWS errors (the
    caller's retry policy).

    version_id: deploy this version instead of the current one (operator forward/back).
    force: deploy even a version marked failed (operator override).
    refresh: start a new ECS deployment even when the version is deployed (moved image tag).
    """
    now = datetime.fromtimestamp(clock(), UTC)
    seen = observe(target, s3=s3, cfn=cfn, version_id=version_id, force=force, refresh=refresh, now=now)
    return act(target, decide(seen), cfn=cfn)
