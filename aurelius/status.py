"""Where one environment's service stands: what is deployed, what S3 says is newest, and why.

States (``aurelius status`` exits 0 only when every environment shown is ``in sync``):

- in sync: the stack pins the model object's current version.
- behind: a newer version is in S3 and not deployed yet (the redeployer or the schedule will
  deploy it, or ``aurelius deploy``).
- deploying: the stack is busy (*_IN_PROGRESS).
- failed: the stack cannot be updated (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, ...), or the
  newest version's rollout rolled back and carries the failed mark (aurelius.core.reconcile), so
  nothing deploys it until a newer upload or ``aurelius deploy``.
- missing: the service stack, or the model object, does not exist.
- error: AWS could not be asked (endpoint, credentials, permissions); the reason says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.history import Deploy, ObjectVersion, last_deploy
from aurelius.core.model_version import ModelMissing, VersioningDisabled, current_model_version
from aurelius.core.reconcile import (
    MODEL_URI_PARAMETER,
    MODEL_VERSION_PARAMETER,
    NOT_UPDATABLE,
    failed_version_digest,
    version_digest,
)
from aurelius.stack_deploy import describe_stack, stack_parameters

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
        }


def _head(s3, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
    found = current_model_version(s3, bucket, key, version_id)
    return ObjectVersion(found.version_id, found.last_modified, found.size, is_latest=version_id is None)


def revision_of(task_definition: str | None) -> str | None:
    """The task definition revision number (the ARN ends ":N")."""
    if task_definition and ":" in task_definition:
        return task_definition.rsplit(":", 1)[-1]
    return None


def task_definition_of(cfn, stack_name: str) -> str | None:
    """The TaskDefinition resource's physical id (its ARN, ending ":revision")."""
    resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    # moto returns rows without keys for resource types it skips: .get() throughout.
    return next((r.get("PhysicalResourceId") for r in resources if r.get("ResourceType") == TASK_DEFINITION_TYPE), None)


def environment_status(environment: str, stack_name: str, bucket: str, key: str, *, s3, cfn) -> EnvironmentStatus:
    """Read one environment's state. AWS errors become state ``error``; nothing is raised for them."""
    uri = f"s3://{bucket}/{key}"
    base = dict(environment=environment, stack_name=stack_name, model_uri=uri)
    try:
        return _environment_status(base, bucket, key, s3=s3, cfn=cfn)
    except (ClientError, BotoCoreError) as exc:
        return EnvironmentStatus(**base, state=ERROR, reason=f"{type(exc).__name__}: {exc}")


def _environment_status(base: dict[str, Any], bucket: str, key: str, *, s3, cfn) -> EnvironmentStatus:
    stack = describe_stack(cfn, base["stack_name"])
    newest: ObjectVersion | None = None
    model_problem = None
    try:
        newest = _head(s3, bucket, key)
    except ModelMissing as exc:
        model_problem = (MISSING, f"{exc}: nothing to deploy")
    except VersioningDisabled as exc:
        model_problem = (ERROR, str(exc))
    except ClientError:
        if stack is not None:
            raise
        # No stack, and the model bucket cannot be read either (often: not created yet).
    if stack is None:
        return EnvironmentStatus(**base, state=MISSING, reason=f"service stack {base['stack_name']} does not exist", newest=newest)

    status = stack["StackStatus"]
    params = stack_parameters(stack)
    deployed_id = params.get(MODEL_VERSION_PARAMETER) or None
    deployed = None
    if deployed_id:
        try:
            deployed = _head(s3, bucket, key, deployed_id)
        except (ModelMissing, VersioningDisabled):
            deployed = None  # that version was deleted from S3; the id still says what runs
    known = dict(
        stack_status=status,
        deployed_version=deployed_id,
        deployed=deployed,
        newest=newest,
        task_definition=task_definition_of(cfn, base["stack_name"]),
        last_deploy=last_deploy(cfn, s3, stack, bucket, key),
    )

    if status.endswith("_IN_PROGRESS"):
        return EnvironmentStatus(**base, state=DEPLOYING, reason=f"stack is {status}", **known)
    if status in NOT_UPDATABLE:
        return EnvironmentStatus(**base, state=FAILED, reason=f"stack is {status} and cannot be updated; a human must repair it", **known)
    if model_problem:
        state, reason = model_problem
        return EnvironmentStatus(**base, state=state, reason=reason, **known)
    assert newest is not None
    if deployed_id == newest.version_id and params.get(MODEL_URI_PARAMETER) == base["model_uri"]:
        return EnvironmentStatus(**base, state=IN_SYNC, reason="the deployed version is the newest", **known)
    if failed_version_digest(cfn, stack) == version_digest(newest.version_id):
        return EnvironmentStatus(
            **base,
            state=FAILED,
            reason=(
                f"the rollout of the newest version {newest.version_id} rolled back (failed mark); upload a newer "
                "version or retry it with `aurelius deploy --version-id`"
            ),
            **known,
        )
    return EnvironmentStatus(**base, state=BEHIND, reason=f"the newest version {newest.version_id} is not deployed", **known)
