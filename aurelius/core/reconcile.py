"""The reconcile step: make the service stack run the model version S3 says is current.

Level-triggered (docs/design.md, "The redeploy loop"): an event is only a wake-up call. Every
call reads what is wanted (HeadObject) and what is deployed (DescribeStacks), asks the one
decision function (aurelius.core.decision) what to do, and does at most one thing: UpdateStack,
or CancelUpdateStack for an update of ours stuck past its deadline. So duplicates, reordering
and bursts cannot deploy an old model, and a busy stack loses nothing. It never waits for the
rollout (Lambda stops at 15 minutes; a rollout can take longer): CloudFormation and the ECS
circuit breaker own it, and the stack's status-change event wakes us again.

The handlers map outcomes to logs, metrics and notifications in one place
(aurelius.core.lambda_runtime).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from aurelius.core.decision import (
    MODEL_URI_PARAMETER,
    MODEL_VERSION_PARAMETER,
    NONCE_PARAMETER,
    Act,
    Action,
    Decision,
    Observed,
    StackState,
    cancel_refused,
    decide,
    needs_last_token,
    update_refused,
)
from aurelius.core.model_version import (
    ModelAccessDenied,
    ModelMissing,
    ModelVersion,
    VersioningDisabled,
    current_model_version,
)
from aurelius.core.stacks import describe_stack
from aurelius.core.tokens import cancel_token, last_update_token, request_token


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
    finding: str | None = None  # the named state that decided (aurelius.core.decision), if any

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data


def model_parameter_values(version: ModelVersion) -> dict[str, str]:
    """The two stack parameters that pin a model version."""
    return {
        MODEL_URI_PARAMETER: version.uri,
        MODEL_VERSION_PARAMETER: version.version_id,
    }


def update_parameters(current: dict[str, str], new_values: dict[str, str]) -> list[dict[str, Any]]:
    """The Parameters list of an update with UsePreviousTemplate: new values, every other key kept.

    With UsePreviousTemplate, a parameter left out falls back to its Default
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html): list all.
    Shared by reconcile's UpdateStack and the operator CLI's dry-run change set.
    """
    return [
        {"ParameterKey": key, "ParameterValue": new_values[key]}
        if key in new_values
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in current
    ]


def observe(
    target: Target,
    *,
    s3,
    cfn,
    version_id: str | None = None,
    force: bool = False,
    refresh: bool = False,
    now: datetime | None = None,
) -> Observed:
    """Read what the decision needs: the wanted version (or why it cannot be read), the stack,
    and the newest update's token when the decision will look at it."""
    now = now or datetime.now(UTC)
    wanted, problem = None, None
    try:
        wanted = current_model_version(s3, target.bucket, target.key, version_id)
    except (ModelMissing, VersioningDisabled, ModelAccessDenied) as exc:
        problem = exc
    described = describe_stack(cfn, target.stack_name)
    stack = StackState.from_description(described) if described else None
    token = last_update_token(cfn, target.stack_name) if needs_last_token(stack, now, force) else None
    return Observed(
        target.stack_name,
        target.model_uri,
        now,
        wanted,
        problem,
        stack,
        token,
        force=force,
        refresh=refresh,
    )


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
    """One reconcile step. Raises only for unexpected AWS errors (the caller's retry policy).

    version_id: deploy this version instead of the current one (operator forward/back).
    force: deploy even a version marked failed (operator override).
    refresh: start a new ECS deployment even when the version is deployed (moved image tag).
    """
    now = clock()
    seen = observe(
        target,
        s3=s3,
        cfn=cfn,
        version_id=version_id,
        force=force,
        refresh=refresh,
        now=datetime.fromtimestamp(now, UTC),
    )
    decision = decide(seen)
    stack, wanted = seen.stack, seen.wanted
    known = {
        "wanted_version": wanted.version_id if wanted else None,
        "deployed_version": stack.deployed_version if stack else None,
        "stack_status": stack.status if stack else None,
    }

    def outcome(result: Decision, token: str | None = None) -> Outcome:
        return Outcome(
            result.action,
            result.reason,
            target.stack_name,
            token=token,
            finding=result.finding,
            **known,
        )

    if decision.act is Act.CANCEL:
        assert stack is not None
        # The cancel's token names the version whose rollout is cancelled; CloudFormation puts it
        # on the rollback's events, so `aurelius history` can tell a deadline cancel from a person's.
        token = cancel_token(seen.last_token, now)
        try:
            cfn.cancel_update_stack(StackName=target.stack_name, ClientRequestToken=token)
        except ClientError as exc:
            refused = cancel_refused(_error_message(exc))
            if refused is None:
                raise
            return outcome(refused)
        return outcome(decision, token)
    if decision.act is not Act.UPDATE:
        return outcome(decision)

    assert stack is not None and wanted is not None
    params = dict(stack.parameters)
    in_sync = params.get(MODEL_VERSION_PARAMETER) == wanted.version_id and params.get(MODEL_URI_PARAMETER) == wanted.uri
    kind = "force" if force or version_id else ("refresh" if in_sync else "auto")
    token = request_token(kind, wanted.version_id, now)
    new_values = model_parameter_values(wanted)
    if in_sync and NONCE_PARAMETER in params:
        new_values[NONCE_PARAMETER] = token
    kwargs: dict[str, Any] = {
        "StackName": target.stack_name,
        "UsePreviousTemplate": True,
        "Parameters": update_parameters(params, new_values),
        "Capabilities": list(stack.capabilities) or list(target.default_capabilities),
        "ClientRequestToken": token,
    }
    if target.role_arn:
        kwargs["RoleARN"] = target.role_arn
    try:
        cfn.update_stack(**kwargs)
    except ClientError as exc:
        refused = update_refused(_error_message(exc))
        if refused is None:
            raise
        return outcome(refused)
    return outcome(decision, token)


def _error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))
