"""The reconcile step: make the service stack run the model version S3 says is current.

Level-triggered (DESIGN.md, "The redeploy loop"): an event is only a wake-up call. Every call
reads what is wanted (HeadObject) and what is deployed (DescribeStacks) and acts on the
difference, so duplicates, reordering and bursts cannot deploy an old model, and a busy stack
loses nothing. It never waits for the rollout (Lambda stops at 15 minutes; a rollout can take
longer): CloudFormation and the ECS circuit breaker own it, and the stack's status-change
event wakes us again.

Decisions map to one of five actions; the handlers map actions to logs, metrics and
notifications in one place (aurelius.core.lambda_runtime).
"""

from __future__ import annotations

import enum
import hashlib
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from aurelius.core.model_version import ModelMissing, ModelVersion, VersioningDisabled, current_model_version
from aurelius.core.stacks import describe_stack, stack_parameters

MODEL_URI_PARAMETER = "ModelS3Uri"
MODEL_VERSION_PARAMETER = "ModelVersionId"
NONCE_PARAMETER = "DeploymentNonce"

# States in which UpdateStack is refused and only a human can help (aws.md, UpdateStack table).
NOT_UPDATABLE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "DELETE_COMPLETE"}

# ClientRequestToken tags every stack event of the update it starts (1-128 chars,
# [a-zA-Z0-9][-a-zA-Z0-9]*). We put a digest of the model version in it, so the stack's
# own event history records which version each update tried: that is the failed mark.
TOKEN_PATTERN = re.compile(r"^aurelius-(auto|force|refresh)-([0-9a-f]{16})-\d+$")


class Action(str, enum.Enum):
    STARTED = "started"  # UpdateStack accepted: the rollout is CloudFormation's now
    IN_SYNC = "in-sync"  # nothing to do
    SKIPPED = "skipped"  # a reason not to deploy (failed version, empty or missing model)
    DEFERRED = "deferred"  # stack busy: the status-change event or the schedule brings us back
    ALARM = "alarm"  # a human must act: stack not updatable or missing, bucket unversioned


@dataclass(frozen=True)
class Target:
    """Which stack follows which model object, and how we may update it."""

    stack_name: str
    bucket: str
    key: str
    role_arn: str | None = None
    # Used when DescribeStacks does not report the stack's capabilities.
    default_capabilities: tuple[str, ...] = ("CAPABILITY_IAM",)

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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data


def version_digest(version_id: str) -> str:
    return hashlib.sha256(version_id.encode("utf-8")).hexdigest()[:16]


def request_token(kind: str, version_id: str, now: float) -> str:
    return f"aurelius-{kind}-{version_digest(version_id)}-{int(now)}"


def last_update_attempt(cfn, stack_name: str) -> str | None:
    """Token of the newest update that started on the stack (None if unknown or not ours).

    The newest page of events is enough: an update writes its stack-level UPDATE_IN_PROGRESS
    first, and the rollback that follows writes a few dozen events at most.
    """
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    for event in events:  # newest first
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("ResourceStatus") == "UPDATE_IN_PROGRESS":
            return event.get("ClientRequestToken")
    return None


def failed_version_digest(cfn, stack: dict[str, Any]) -> str | None:
    """The digest of the model version whose update rolled back, if the stack's last update did."""
    if stack["StackStatus"] != "UPDATE_ROLLBACK_COMPLETE":
        return None
    token = last_update_attempt(cfn, stack["StackName"]) or ""
    match = TOKEN_PATTERN.match(token)
    return match.group(2) if match else None


def model_parameter_values(version: ModelVersion) -> dict[str, str]:
    """The two stack parameters that pin a model version."""
    return {MODEL_URI_PARAMETER: version.uri, MODEL_VERSION_PARAMETER: version.version_id}


def update_parameters(current: dict[str, str], new_values: dict[str, str]) -> list[dict[str, Any]]:
    """The Parameters list of an update with UsePreviousTemplate: new values, every other key kept.

    With UsePreviousTemplate, a parameter left out falls back to its Default (aws.md): list all.
    Shared by reconcile's UpdateStack and the operator CLI's dry-run change set, so both send the
    same thing.
    """
    return [
        {"ParameterKey": key, "ParameterValue": new_values[key]} if key in new_values else {"ParameterKey": key, "UsePreviousValue": True}
        for key in current
    ]


def _error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


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

    def outcome(action: Action, reason: str, **extra: Any) -> Outcome:
        return Outcome(action, reason, target.stack_name, **extra)

    try:
        wanted: ModelVersion = current_model_version(s3, target.bucket, target.key, version_id)
    except ModelMissing as exc:
        return outcome(Action.SKIPPED, f"{exc}; the service keeps its pinned version")
    except VersioningDisabled as exc:
        return outcome(Action.ALARM, str(exc))
    if wanted.size == 0:
        return outcome(Action.SKIPPED, f"model object {wanted.uri} version {wanted.version_id} is empty", wanted_version=wanted.version_id)

    stack = describe_stack(cfn, target.stack_name)
    if stack is None:
        return outcome(Action.ALARM, f"service stack {target.stack_name} missing; deploy it first", wanted_version=wanted.version_id)
    status = stack["StackStatus"]
    params = stack_parameters(stack)
    deployed = params.get(MODEL_VERSION_PARAMETER)
    known = dict(wanted_version=wanted.version_id, deployed_version=deployed, stack_status=status)

    in_sync = deployed == wanted.version_id and params.get(MODEL_URI_PARAMETER) == wanted.uri
    if in_sync and not refresh:
        return outcome(Action.IN_SYNC, "deployed version is the current version", **known)
    if status.endswith("_IN_PROGRESS"):
        return outcome(Action.DEFERRED, f"stack is {status}; the stack status event or the schedule retries", **known)
    if status in NOT_UPDATABLE:
        return outcome(Action.ALARM, f"stack is {status} and cannot be updated; a human must repair it", **known)
    if not force and failed_version_digest(cfn, stack) == version_digest(wanted.version_id):
        return outcome(
            Action.SKIPPED,
            "this version's rollout rolled back; upload a newer version or force it (aurelius deploy)",
            **known,
        )

    kind = "force" if force or version_id else ("refresh" if in_sync else "auto")
    token = request_token(kind, wanted.version_id, clock())
    new_values = model_parameter_values(wanted)
    if in_sync and NONCE_PARAMETER in params:
        new_values[NONCE_PARAMETER] = token
    missing = set(new_values) - set(params)
    if missing:
        return outcome(Action.ALARM, f"stack has no parameter {sorted(missing)[0]}: not an aurelius service stack", **known)
    kwargs: dict[str, Any] = dict(
        StackName=target.stack_name,
        UsePreviousTemplate=True,
        Parameters=update_parameters(params, new_values),
        Capabilities=stack.get("Capabilities") or list(target.default_capabilities),
        ClientRequestToken=token,
    )
    if target.role_arn:
        kwargs["RoleARN"] = target.role_arn
    try:
        cfn.update_stack(**kwargs)
    except ClientError as exc:
        message = _error_message(exc)
        if "No updates are to be performed" in message:
            return outcome(Action.IN_SYNC, "CloudFormation: no updates are to be performed", **known)
        if "_IN_PROGRESS state" in message:
            # Went busy between DescribeStacks and UpdateStack.
            return outcome(Action.DEFERRED, message, **known)
        if "can not be updated" in message or "cannot be updated" in message or "does not exist" in message:
            return outcome(Action.ALARM, message, **known)
        raise
    return outcome(Action.STARTED, f"update started to {wanted.version_id}", token=token, **known)
