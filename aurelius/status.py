"""Where one environment's service stands: what is deployed, what S3 says is newest, and why.

States (``aurelius status`` exits 0 only when every environment shown is ``in sync``):

- in sync: the stack pins the model object's current version.
- behind: a newer version is in S3 and not deployed yet (the redeployer or the schedule will
  deploy it, or ``aurelius deploy``).
- deploying: the stack is busy (*_IN_PROGRESS); for an update, how long it has run and its
  deadline (past it, the redeployer cancels an update it started).
- failed: the stack cannot be updated (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, ...), the
  newest version's rollout rolled back and carries the failed mark, so nothing deploys it until a
  newer upload or ``aurelius deploy``, or the newest version is empty, or it has no signature
  object where the stack requires signing (NotSigned).
- missing: the service stack, or the model object, does not exist.
- error: AWS could not be asked (endpoint, credentials, permissions), or what it answered makes
  deploying impossible (bucket not versioned, not an aurelius stack); the reason says.

The state is the redeployer's own decision (aurelius.core.decision) on what was read, put in
words for people: status and the functions cannot disagree.

Also shown, none of which changes the state: whether the deployed and the newest version have
a signature object (aurelius.core.model_signature; presence only, the server verifies) and
whether the stack requires one; the service's desired / running tasks and its scaling range
(aurelius.infra_checks.task_count); and the deployment alarms already in ALARM
(aurelius.infra_checks.alarms_in_alarm), which ECS ignores when a rollout starts. What cannot
be read for these (a missing permission) is said in ``service_note`` rather than failing status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.decision import Decision, Finding, Observed, Rollout, decide
from aurelius.core.model_signature import SignatureStatus, signature_status
from aurelius.core.model_version import ModelMissing, ModelVersion, VersioningDisabled, current_model_version
from aurelius.core.reconcile import Target, observe
from aurelius.core.stacks import describe_stack
from aurelius.history import Deploy, ObjectVersion, last_deploy
from aurelius.infra_checks import TaskCount, alarms_in_alarm, scaling_resource_id, task_count

IN_SYNC, BEHIND, DEPLOYING, FAILED, MISSING, ERROR = "in sync", "behind", "deploying", "failed", "missing", "error"
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"
SERVICE_TYPE = "AWS::ECS::Service"
ALARM_NOTE = (
    "this alarm will not protect the next rollout (ECS ignores an alarm already in ALARM when a deployment starts)"
)


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
    signing_required: bool = False  # the stack's SigningRequired
    deployed_signature: SignatureStatus | None = None  # None: not looked for (no such version)
    newest_signature: SignatureStatus | None = None
    tasks: TaskCount | None = None
    alarms_in_alarm: tuple[str, ...] = ()  # deployment alarms in ALARM now
    service_note: str | None = None  # why tasks or alarms could not be read

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
            "signing_required": self.signing_required,
            "deployed_signature": self.deployed_signature.as_dict() if self.deployed_signature else None,
            "newest_signature": self.newest_signature.as_dict() if self.newest_signature else None,
            "tasks": self.tasks.as_dict() if self.tasks else None,
            "deployment_alarms_in_alarm": [{"name": name, "note": ALARM_NOTE} for name in self.alarms_in_alarm],
            "service_note": self.service_note,
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
    Finding.NOT_SIGNED: FAILED,
    Finding.SIGNATURE_ACCESS_DENIED: ERROR,
}


def _object(found: ModelVersion, is_latest: bool) -> ObjectVersion:
    return ObjectVersion(found.version_id, found.last_modified, found.size, is_latest=is_latest)


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
    return physical_ids(cfn, stack_name).get(TASK_DEFINITION_TYPE)


def physical_ids(cfn, stack_name: str) -> dict[str, str]:
    """Resource type -> physical id of the stack's first resource of that type."""
    resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    found: dict[str, str] = {}
    # moto returns rows without keys for resource types it skips: .get() throughout.
    for resource in resources:
        if resource.get("ResourceType") and resource.get("PhysicalResourceId"):
            found.setdefault(resource["ResourceType"], resource["PhysicalResourceId"])
    return found


def service_cluster_and_name(service_arn: str) -> tuple[str, str] | None:
    """(cluster, service name) of an ECS service ARN in the current format
    (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME); None for any other id (the old format
    has no cluster)."""
    if ":service/" not in service_arn:
        return None
    parts = service_arn.split(":service/", 1)[1].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


@dataclass(frozen=True)
class ServiceClients:
    """Makes the clients for the service's tasks and alarms, only when the stack has a service."""

    make: Callable[[str], Any]  # boto3 service name -> client

    @property
    def ecs(self) -> Any:
        return self.make("ecs")

    @property
    def autoscaling(self) -> Any:
        return self.make("application-autoscaling")

    @property
    def cloudwatch(self) -> Any:
        return self.make("cloudwatch")


def service_health(service_arn: str, clients: ServiceClients) -> tuple[TaskCount | None, tuple[str, ...], str | None]:
    """Desired / running / min-max and the deployment alarms in ALARM; a note instead when AWS refuses.

    ecs:DescribeServices, application-autoscaling:DescribeScalableTargets and, when the service
    has deployment alarms, cloudwatch:DescribeAlarms.
    """
    cluster = (service_cluster_and_name(service_arn) or ("default", service_arn))[0]
    try:
        services = clients.ecs.describe_services(cluster=cluster, services=[service_arn]).get("services", [])
        if not services:
            return None, (), f"ECS service {service_arn} not found"
        service = services[0]
        targets = clients.autoscaling.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[scaling_resource_id(service)]
        )
        count = task_count(service, targets)
        names = (((service.get("deploymentConfiguration") or {}).get("alarms") or {}).get("alarmNames")) or []
        in_alarm = alarms_in_alarm(clients.cloudwatch.describe_alarms(AlarmNames=names), names) if names else []
    except (ClientError, BotoCoreError) as exc:
        return None, (), f"tasks and deployment alarms not read: {type(exc).__name__}: {exc}"
    return count, tuple(in_alarm), None


def _signature(s3, version: ModelVersion | None) -> SignatureStatus | None:
    """For display: a failure to look is shown as no status, never as an error of the environment."""
    if version is None:
        return None
    try:
        return signature_status(s3, version)
    except (ClientError, BotoCoreError):
        return None


def environment_status(
    environment: str,
    stack_name: str,
    bucket: str,
    key: str,
    *,
    s3,
    cfn,
    now: datetime | None = None,
    service_clients: ServiceClients | None = None,
) -> EnvironmentStatus:
    """Read one environment's state. AWS errors become state ``error``; nothing is raised for them."""
    target = Target(stack_name, bucket, key)
    base = dict(environment=environment, stack_name=stack_name, model_uri=target.model_uri)
    try:
        seen = _observe(target, s3=s3, cfn=cfn, now=now or datetime.now(UTC))
        if seen is None:
            return EnvironmentStatus(**base, state=MISSING, reason=f"service stack {stack_name} does not exist")
        return _environment_status(base, target, seen, decide(seen), s3=s3, cfn=cfn, service_clients=service_clients)
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
    base: dict[str, Any],
    target: Target,
    seen: Observed,
    decision: Decision,
    *,
    s3,
    cfn,
    service_clients: ServiceClients | None = None,
) -> EnvironmentStatus:
    wanted, stack = seen.wanted, seen.stack
    newest = _object(wanted, is_latest=True) if wanted else None
    state = STATE_FOR_FINDING[decision.finding]
    reason = _reason(decision, target.stack_name, newest, seen.now)
    newest_signature = seen.signature or _signature(s3, wanted)
    if stack is None:
        return EnvironmentStatus(**base, state=state, reason=reason, newest=newest, newest_signature=newest_signature)
    deployed_id = stack.deployed_version
    deployed_version: ModelVersion | None = None
    if deployed_id:
        try:
            deployed_version = (
                wanted
                if wanted and wanted.version_id == deployed_id
                else current_model_version(s3, target.bucket, target.key, deployed_id)
            )
        except (ModelMissing, VersioningDisabled):
            deployed_version = None  # that version was deleted from S3; the id still says what runs
    same = deployed_version is not None and deployed_version is wanted
    physical = physical_ids(cfn, target.stack_name)
    tasks, in_alarm, note = None, (), None
    if service_clients is not None and physical.get(SERVICE_TYPE):
        tasks, in_alarm, note = service_health(physical[SERVICE_TYPE], service_clients)
    return EnvironmentStatus(
        **base,
        state=state,
        reason=reason,
        stack_status=stack.status,
        deployed_version=deployed_id,
        deployed=_object(deployed_version, is_latest=same) if deployed_version else None,
        newest=newest,
        task_definition=physical.get(TASK_DEFINITION_TYPE),
        last_deploy=last_deploy(cfn, s3, stack, target.bucket, target.key),
        rollout=decision.rollout,
        now=seen.now,
        signing_required=stack.signing_required,
        deployed_signature=newest_signature if same else _signature(s3, deployed_version),
        newest_signature=newest_signature,
        tasks=tasks,
        alarms_in_alarm=in_alarm,
        service_note=note,
    )
