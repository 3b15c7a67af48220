"""What the function and service roles must be allowed, and iam:SimulatePrincipalPolicy of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.aws_errors import error_code
from aurelius.doctor.check import ACCESS_DENIED, FAIL, NOT_CHECKABLE, OK, SKIPPED, Check, failed_call
from aurelius.infra_checks import (
    Permission,
    pass_role_targets,
    service_linked_role_arn,
    service_role_update_needs,
    template_from_body,
)

# Actions a role must be allowed on one resource ARN, with the request context they carry.
Need = Permission


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
    arns: Arns, cluster: str, service: str, family: str, passed_roles: Mapping[str, str]
) -> list[Need]:
    """What a model update makes CloudFormation do with the service role, on the ARNs IAM
    authorizes (``service_role_update_needs``: the registry schemas' update handlers, with
    ecs:StopServiceDeployment). ``passed_roles``: role ARN -> the service it is passed to
    (``passed_roles`` below): the task roles to ecs-tasks, the canary's load balancer role to ecs."""
    return [
        Need(p.actions, p.resource, dict(p.context))
        for p in service_role_update_needs(
            arns.partition, arns.region, arns.account, cluster, service, family, passed_roles
        )
    ]


def service_linked_role_need(arns: Arns, service: str) -> Need:
    """iam:CreateServiceLinkedRole of ``service``'s role, as CloudFormation's call carries it."""
    return Need(
        ("iam:CreateServiceLinkedRole",),
        service_linked_role_arn(arns.partition, arns.account, service),
        {"iam:AWSServiceName": service},
    )


def passed_roles(cfn, stack_name: str, arns: Arns) -> dict[str, str]:
    """Role ARN -> the service it is passed to, for the roles the deployed service stack created:
    ``pass_role_targets`` of its template (cloudformation:GetTemplate), the physical names from
    cloudformation:DescribeStackResources (a role's physical id is its name). A role a condition
    left out (the load balancer role of a rolling environment) is not in the stack."""
    template = template_from_body(cfn.get_template(StackName=stack_name)["TemplateBody"])
    targets = pass_role_targets(template)
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return {
        f"arn:{arns.partition}:iam::{arns.account}:role/{r['PhysicalResourceId']}": targets[r["LogicalResourceId"]]
        for r in resources
        if r.get("LogicalResourceId") in targets and r.get("PhysicalResourceId")
    }


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
