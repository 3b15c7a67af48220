"""Where one environment's service stands: what is deployed, what S3 says is newest, and why.

States (``aurelius status`` exits 0 only when every environment shown is ``in sync``):

- in sync: the stack pins the model object's current version.
- behind: a newer version is in S3 and not deployed yet (the redeployer or the schedule will
  deploy it, or ``aurelius deploy``).
- deploying: the stack is busy (*_IN_PROGRESS); for an update, how long it has run and its
  deadline (past it, the redeployer cancels an update it started).
- failed: the stack cannot be updated (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, ...), the
  newest version's rollout rolled back and carries the failed mark, so nothing deploys it until a
  newer upload or ``aurelius deploy``, or the newest version is empty.
- missing: the service stack, or the model object, does not exist.
- error: AWS could not be asked (endpoint, credentials, permissions), or what it answered makes
  deploying impossible (bucket not versioned, not an aurelius stack); the reason says.

The state is the redeployer's own decision (aurelius.core.decision) on what was read, put in
words for people: status and the functions cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.decision import Decision, Finding, Observed, Rollout, decide
from aurelius.core.model_version import ModelMissing, VersioningDisabled, current_model_version
from aurelius.core.reconcile import Target, observe
from aurelius.core.stacks import describe_stack
from aurelius.history import Deploy, ObjectVersion, last_deploy

IN_SYNC, BEHIND, DEPLOYING, FAILED, MISSING, ERROR = "in sync", "behind", "deploying", "failed", "missing", "error"
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    stack_name: str
    model_uri: str
    state: str
    reason: str
    stack_status: str | None = None
    deployed_version: str | None = None
    deployed: ObjectVersion | None = None  # None also when that version is gone from S3
    newest: ObjectVersion | None = None
    task_definition: str | None = None
    last_deploy: Deploy | None = None
    rollout: Rollout | None = None  # the update running now (UPDATE_IN_PROGRESS)
    now: datetime | None = None  # when it was read (for the rollout's elapsed time)

    @property
    def revision(self) -> str | None:
        return revision_of(self.task_definition)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "stack_name": self.stack_name,
            "model_uri": self.model_uri,
            "state": self.state,
            "reason": self.reason,
            "stack_status": self.stack_status,
            "deployed": {**(self.deployed.as_dict() if self.deployed else {}), "version_id": self.deployed_version}
            if self.deployed_version
            else None,
            "newest": self.newest.as_dict() if self.newest else None,
            "task_definition": self.task_definition,
            "revision": int(self.revision) if self.revision and self.revision.isdigit() else self.revision,
            "last_deploy": self.last_deploy.as_dict() if self.last_deploy else None,
            "rollout": _rollout_dict(self.rollout, self.now),
        }


def _rollout_dict(rollout: Rollout | None, now: datetime | None) -> dict[str, Any] | None:
    if rollout is None or now is None:
        return None
    return {
        "started": rollout.started.isoformat(),
        "running_seconds": int(rollout.elapsed(now).total_seconds()),
        "deadline": rollout.deadline.isoformat() if rollout.deadline else None,
        "past_deadline": rollout.overdue(now),
    }


# The decision's named state -> the state shown to people (None: the update the redeployer would
# start, so the service is behind).
STATE_FOR_FINDING: dict[Finding | None, str] = {
    Finding.IN_SYNC: IN_SYNC,
    None: BEHIND,
    Finding.STACK_BUSY: DEPLOYING,
    Finding.PAST_DEADLINE: DEPLOYING,
    Finding.STACK_NOT_UPDATABLE: FAILED,
    Finding.FAILED_VERSION: FAILED,
    Finding.EMPTY_MODEL: FAILED,
    Finding.STACK_MISSING: MISSING,
    Finding.MODEL_MISSING: MISSING,
    Finding.MODEL_ACCESS_DENIED: ERROR,
    Finding.VERSIONING_DISABLED: ERROR,
    Finding.NOT_AN_AURELIUS_STACK: ERROR,
}


def _head(s3, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
    found = current_model_version(s3, bucket, key, version_id)
    return ObjectVersion(found.version_id, found.last_modified, found.size, is_latest=version_id is None)


def revision_of(task_definition: str | None) -> str | None:
    """The task definition revision number (the ARN ends ":N")."""
    if task_definition and ":" in task_definition:
        return task_definition.rsplit(":", 1)[-1]
    return None


def _reason(decision: Decision, stack_name: str, newest: ObjectVersion | None, now: datetime) -> str:
    """The decision's reason, worded for someone looking at the service rather than the redeployer."""
    finding = decision.finding
    if finding is None:
        return f"the newest version {newest.version_id if newest else '-'} is not deployed"
    if finding is Finding.IN_SYNC:
        return "the deployed version is the newest"
    if finding is Finding.STACK_MISSING:
        return f"service stack {stack_name} does not exist"
    if finding is Finding.FAILED_VERSION:
        return (
            f"the rollout of the newest version {newest.version_id if newest else '-'} rolled back (failed mark); upload a "
            "newer version or retry it with `aurelius deploy --version-id`"
        )
    if finding is Finding.PAST_DEADLINE and decision.rollout is not None:
        return (
            f"stack is UPDATE_IN_PROGRESS past its deadline ({decision.rollout.describe(now)}); the redeployer cancels "
            "this update on its next run"
        )
    return decision.reason


def task_definition_of(cfn, stack_name: str) -> str | None:
    """The TaskDefinition resource's physical id (its ARN, ending ":revision")."""
    resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    # moto returns rows without keys for resource types it skips: .get() throughout.
    return next((r.get("PhysicalResourceId") for r in resources if r.get("ResourceType") == TASK_DEFINITION_TYPE), None)


def environment_status(
    environment: str, stack_name: str, bucket: str, key: str, *, s3, cfn, now: datetime | None = None
) -> EnvironmentStatus:
    """Read one environment's state. AWS errors become state ``error``; nothing is raised for them."""
    target = Target(stack_name, bucket, key)
    base = dict(environment=environment, stack_name=stack_name, model_uri=target.model_uri)
    try:
        seen = _observe(target, s3=s3, cfn=cfn, now=now or datetime.now(UTC))
        if seen is None:
            return EnvironmentStatus(**base, state=MISSING, reason=f"service stack {stack_name} does not exist")
        return _environment_status(base, target, seen, decide(seen), s3=s3, cfn=cfn)
    except (ClientError, BotoCoreError) as exc:
        return EnvironmentStatus(**base, state=ERROR, reason=f"{type(exc).__name__}: {exc}")


def _observe(target: Target, *, s3, cfn, now: datetime) -> Observed | None:
    """The redeployer's observation; None when neither the stack nor the model can be read (often:
    an environment not created yet, whose bucket does not exist either)."""
    try:
        return observe(target, s3=s3, cfn=cfn, now=now)
    except ClientError as exc:
        if exc.operation_name == "HeadObject" and describe_stack(cfn, target.stack_name) is None:
            return None
        raise


def _environment_status(
    base: dict[str, Any], target: Target, seen: Observed, decision: Decision, *, s3, cfn
) -> EnvironmentStatus:
    wanted, stack = seen.wanted, seen.stack
    newest = ObjectVersion(wanted.version_id, wanted.last_modified, wanted.size, is_latest=True) if wanted else None
    state = STATE_FOR_FINDING[decision.finding]
    reason = _reason(decision, target.stack_name, newest, seen.now)
    if stack is None:
        return EnvironmentStatus(**base, state=state, reason=reason, newest=newest)
    deployed_id = stack.deployed_version
    deployed = None
    if deployed_id:
        try:
            deployed = _head(s3, target.bucket, target.key, deployed_id)
        except (ModelMissing, VersioningDisabled):
            deployed = None  # that version was deleted from S3; the id still says what runs
    return EnvironmentStatus(
        **base,
        state=state,
        reason=reason,
        stack_status=stack.status,
        deployed_version=deployed_id,
        deployed=deployed,
        newest=newest,
        task_definition=task_definition_of(cfn, target.stack_name),
        last_deploy=last_deploy(cfn, s3, stack, target.bucket, target.key),
        rollout=decision.rollout,
        now=seen.now,
    )
