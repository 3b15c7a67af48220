"""Checks of a deployed environment that doctor and status make, as pure functions of AWS answers.

Each function takes the parsed responses of read-only AWS calls (plain dicts shaped as boto3
returns them) and returns a ``Finding`` or plain values; none calls AWS. The caller (doctor,
status) makes the calls named in each docstring, with the IAM actions named there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Finding:
    """One check's outcome: ``ok``, a one-line ``summary``, and ``details`` (what to fix)."""

    ok: bool
    summary: str
    details: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ iam:PassRole targets
def pass_role_targets(template: Mapping[str, Any]) -> dict[str, str]:
    """Which service each IAM role of the service template is passed to, by logical id.

    A role a task definition refers to (TaskRoleArn, ExecutionRoleArn) is passed to
    ``ecs-tasks.amazonaws.com``; a role the ECS service refers to (the canary's
    LoadBalancers[].AdvancedConfiguration.RoleArn) to ``ecs.amazonaws.com``. Doctor checks
    ``iam:PassRole`` with that ``iam:PassedToService`` (a check against ecs-tasks for the load
    balancer role fails on a correct prod deploy). ``template``: the template with intrinsics in
    long form (cfnlint.decode.cfn_yaml.load). No AWS call.
    """
    resources = template["Resources"]
    roles = {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    passed_to = {"AWS::ECS::TaskDefinition": "ecs-tasks.amazonaws.com", "AWS::ECS::Service": "ecs.amazonaws.com"}
    targets: dict[str, str] = {}
    for resource in resources.values():
        service = passed_to.get(resource["Type"])
        if service:
            for role in _referenced(resource.get("Properties", {})) & roles:
                targets[role] = service
    return targets


class _LongFormLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short tags as their long form (``!Ref X`` ->
    ``{"Ref": "X"}``, ``!Condition C`` -> ``{"Condition": "C"}``, ``!GetAtt A.B`` ->
    ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` -> ``{"Fn::Sub": s}``)."""


def _long_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_LongFormLoader.add_multi_constructor("!", _long_form)


def template_from_body(body: str | Mapping[str, Any]) -> dict[str, Any]:
    """The ``TemplateBody`` of cloudformation:GetTemplate as a dict with intrinsics in long form,
    the input ``pass_role_targets`` takes. botocore already decodes a JSON body into a dict; a
    YAML body arrives as text. IAM: cloudformation:GetTemplate."""
    if isinstance(body, Mapping):
        return dict(body)
    return yaml.load(body, Loader=_LongFormLoader)  # a SafeLoader subclass: safe_load plus the tags


def _referenced(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_referenced(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    if "Ref" in node and isinstance(node["Ref"], str):
        return {node["Ref"]}
    if "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        return {(target if isinstance(target, list) else target.split("."))[0]}
    return set().union(*(_referenced(value) for value in node.values())) if node else set()


# ------------------------------------------------------------------ service-linked roles
ELB_SERVICE = "elasticloadbalancing.amazonaws.com"
ECS_SCALING_SERVICE = "ecs.application-autoscaling.amazonaws.com"
SERVICE_LINKED_ROLES = {
    ELB_SERVICE: "AWSServiceRoleForElasticLoadBalancing",
    ECS_SCALING_SERVICE: "AWSServiceRoleForApplicationAutoScaling_ECSService",
}


def service_linked_role_arn(partition: str, account: str, service: str) -> str:
    """The ARN iam:CreateServiceLinkedRole is authorized on for ``service``'s role."""
    return f"arn:{partition}:iam::{account}:role/aws-service-role/{service}/{SERVICE_LINKED_ROLES[service]}"


def service_linked_role_finding(service: str, exists: bool, can_create: bool) -> Finding:
    """The service-linked role of ``service`` exists, or the stack's CloudFormation role may
    create it (the first load balancer / scalable ECS service of an account creates it).

    Inputs: ``exists`` from iam:GetRole on SERVICE_LINKED_ROLES[service] (NoSuchEntity = False;
    IAM action iam:GetRole); ``can_create`` from evaluating iam:CreateServiceLinkedRole on the
    role's ARN with iam:AWSServiceName = service against the role's policies (iam:SimulatePrincipalPolicy,
    or the project's policy evaluator on the template).
    """
    name = SERVICE_LINKED_ROLES[service]
    if exists:
        return Finding(True, f"service-linked role {name} exists")
    if can_create:
        return Finding(True, f"service-linked role {name} does not exist yet; the first deploy creates it")
    return Finding(
        False,
        f"service-linked role {name} does not exist and the CloudFormation role may not create it",
        (
            f"run: aws iam create-service-linked-role --aws-service-name {service}",
            "or redeploy the trigger stack (its role grants iam:CreateServiceLinkedRole for this service)",
        ),
    )


# ------------------------------------------------------------------ one VPC
def same_vpc_finding(container_instances: Sequence[Mapping[str, Any]], subnets: Sequence[Mapping[str, Any]]) -> Finding:
    """The cluster's container instances and the service's task subnets are in one VPC.

    awsvpc tasks get their network interface on an instance, in one of the task subnets: an
    instance in another VPC can place none of them. ``container_instances``: the ``Instances``
    of ec2:DescribeInstances for the instance ids of ecs:ListContainerInstances +
    ecs:DescribeContainerInstances (``ec2InstanceId``); ``subnets``: ``Subnets`` of
    ec2:DescribeSubnets for the service's subnets. IAM: ecs:ListContainerInstances,
    ecs:DescribeContainerInstances, ec2:DescribeInstances, ec2:DescribeSubnets.
    """
    task_vpcs = {s["VpcId"] for s in subnets}
    instance_vpcs = {i["VpcId"] for i in container_instances}
    if not container_instances:
        return Finding(False, "the cluster has no container instances to place tasks on")
    if len(task_vpcs) != 1:
        return Finding(False, f"the task subnets span {len(task_vpcs)} VPCs: {', '.join(sorted(task_vpcs))}")
    (task_vpc,) = task_vpcs
    strays = sorted(i["InstanceId"] for i in container_instances if i["VpcId"] != task_vpc)
    if strays:
        return Finding(
            False,
            f"container instances outside the tasks' VPC {task_vpc}: {', '.join(strays)}",
            ("put the cluster's instances and the service's tasks in the same VPC (cluster and service settings)",),
        )
    instance_azs = {i.get("Placement", {}).get("AvailabilityZone") for i in container_instances}
    missing_azs = sorted({s["AvailabilityZone"] for s in subnets} - instance_azs)
    details = tuple(f"no container instance in {az} yet (tasks there wait for one)" for az in missing_azs)
    return Finding(True, f"instances and tasks share VPC {task_vpc} ({len(instance_vpcs)} VPC)", details)


# ------------------------------------------------------------------ private subnets reach AWS
ECS_ON_EC2_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry")


def _route_table_of(subnet_id: str, vpc_id: str, route_tables: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for table in route_tables:
        if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
            return table
    return next(
        (t for t in route_tables if t.get("VpcId") == vpc_id and any(a.get("Main") for a in t.get("Associations", []))),
        None,
    )


def private_egress_findings(
    subnets: Sequence[Mapping[str, Any]],
    route_tables: Sequence[Mapping[str, Any]],
    endpoints: Sequence[Mapping[str, Any]],
    region: str,
) -> list[Finding]:
    """Each task subnet reaches ECR, S3, CloudWatch Logs and ECS: a default route through a NAT
    gateway, or the VPC endpoints (S3 gateway on its route table, the interface endpoints in
    its VPC). Tasks get no public IP, so a route to an internet gateway alone is not enough.

    Inputs: ``Subnets`` of ec2:DescribeSubnets (the service's subnets), ``RouteTables`` of
    ec2:DescribeRouteTables (filter vpc-id), ``VpcEndpoints`` of ec2:DescribeVpcEndpoints
    (filter vpc-id). IAM: ec2:DescribeSubnets, ec2:DescribeRouteTables, ec2:DescribeVpcEndpoints.
    """
    findings = []
    for subnet in subnets:
        subnet_id, vpc_id = subnet["SubnetId"], subnet["VpcId"]
        table = _route_table_of(subnet_id, vpc_id, route_tables)
        routes = table.get("Routes", []) if table else []
        default = next((r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)
        if default and (default.get("NatGatewayId") or default.get("TransitGatewayId")):
            findings.append(
                Finding(
                    True,
                    f"{subnet_id}: default route through {default.get('NatGatewayId') or default.get('TransitGatewayId')}",
                )
            )
            continue
        available = [
            e for e in endpoints if e.get("VpcId") == vpc_id and e.get("State", "available").lower() == "available"
        ]
        names = {e["ServiceName"].removeprefix(f"com.amazonaws.{region}."): e for e in available}
        missing = [name for name in ECS_ON_EC2_INTERFACE_ENDPOINTS if name not in names]
        s3 = names.get("s3")
        table_id = table.get("RouteTableId") if table else None
        if s3 is None or (s3.get("VpcEndpointType") == "Gateway" and table_id not in s3.get("RouteTableIds", [])):
            missing.insert(0, f"s3 (gateway endpoint on {table_id or 'its route table'})")
        if not missing:
            findings.append(Finding(True, f"{subnet_id}: no NAT route; the VPC endpoints ECS on EC2 needs are there"))
            continue
        via_igw = bool(default and str(default.get("GatewayId", "")).startswith("igw-"))
        findings.append(
            Finding(
                False,
                f"{subnet_id}: tasks cannot reach ECR, S3, Logs and ECS"
                + (" (internet gateway route, but tasks get no public IP)" if via_igw else " (no NAT route)"),
                (
                    "add a NAT gateway route, or the missing VPC endpoints: " + ", ".join(missing),
                    "the cluster stack can create them (cluster settings vpc_endpoints)",
                ),
            )
        )
    return findings


# ------------------------------------------------------------------ scaling fits the cluster
@dataclass(frozen=True)
class InstanceCapacity:
    """What one container instance offers awsvpc tasks (from ec2:DescribeInstanceTypes)."""

    vcpus: int
    memory_mib: int
    network_interfaces: int

    @classmethod
    def from_instance_type(cls, info: Mapping[str, Any]) -> InstanceCapacity:
        """``info``: one ``InstanceTypes`` item of ec2:DescribeInstanceTypes (IAM: ec2:DescribeInstanceTypes)."""
        return cls(
            vcpus=info["VCpuInfo"]["DefaultVCpus"],
            memory_mib=info["MemoryInfo"]["SizeInMiB"],
            network_interfaces=info["NetworkInfo"]["MaximumNetworkInterfaces"],
        )


# Memory the ECS-optimized AMI does not register for tasks (OS and agent); an estimate: the
# container instance's registeredResources (ecs:DescribeContainerInstances) give the exact figure.
RESERVED_MEMORY_MIB = 256


def tasks_per_instance(capacity: InstanceCapacity, task_cpu: int, task_memory: int) -> int:
    """awsvpc tasks one instance holds: CPU, memory, and one network interface per task (the
    instance keeps its primary one; no ENI trunking)."""
    return max(
        0,
        min(
            capacity.vcpus * 1024 // task_cpu,
            (capacity.memory_mib - RESERVED_MEMORY_MIB) // task_memory,
            capacity.network_interfaces - 1,
        ),
    )


def scaling_fits_cluster_finding(
    most_tasks: int,
    task_cpu: int,
    task_memory: int,
    capacity: InstanceCapacity,
    group_max: int,
    maximum_percent: int = 200,
) -> Finding:
    """The cluster's Auto Scaling group can hold the service at its largest count during a
    deploy (MaximumPercent of it: a deploy starts a full new set next to the old one).

    Inputs: ``most_tasks`` (settings: scaling.max or desired_count), the task size, the
    instance type's capacity, ``group_max`` = MaxSize of autoscaling:DescribeAutoScalingGroups
    (IAM: autoscaling:DescribeAutoScalingGroups, ec2:DescribeInstanceTypes).
    """
    per_instance = tasks_per_instance(capacity, task_cpu, task_memory)
    peak = math.ceil(most_tasks * maximum_percent / 100)
    if per_instance == 0:
        return Finding(False, f"a task of {task_cpu} CPU / {task_memory} MiB does not fit on one instance")
    needed = math.ceil(peak / per_instance)
    summary = f"{peak} tasks during a deploy need {needed} instances ({per_instance} per instance); the group allows {group_max}"
    if needed <= group_max:
        return Finding(True, summary)
    return Finding(False, summary, (f"raise the cluster's capacity.max to {needed}, or lower scaling.max",))


# ------------------------------------------------------------------ deployment alarms
def alarms_in_alarm(describe_alarms: Mapping[str, Any], deployment_alarm_names: Iterable[str]) -> list[str]:
    """Deployment alarms already in ALARM: ECS ignores an alarm that is in ALARM when a
    deployment starts, so it will not protect the next rollout
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html).

    Input: cloudwatch:DescribeAlarms(AlarmNames=the service's DeploymentConfiguration.Alarms.AlarmNames)
    (IAM: cloudwatch:DescribeAlarms; the names come from ecs:DescribeServices).
    """
    wanted = set(deployment_alarm_names)
    return sorted(
        a["AlarmName"]
        for a in describe_alarms.get("MetricAlarms", []) + describe_alarms.get("CompositeAlarms", [])
        if a["AlarmName"] in wanted and a.get("StateValue") == "ALARM"
    )


# ------------------------------------------------------------------ status: the count
@dataclass(frozen=True)
class TaskCount:
    desired: int
    running: int
    minimum: int | None  # None: the service does not scale
    maximum: int | None

    def as_dict(self) -> dict[str, int | None]:
        return {"desired": self.desired, "running": self.running, "min": self.minimum, "max": self.maximum}

    def __str__(self) -> str:
        scaling = f", scaling {self.minimum}-{self.maximum}" if self.minimum is not None else ", fixed count"
        return f"{self.running}/{self.desired} tasks running{scaling}"


def scaling_resource_id(service: Mapping[str, Any]) -> str:
    """Application Auto Scaling's id of an ECS service ("service/CLUSTER/SERVICE"), from one
    ``services`` item of ecs:DescribeServices."""
    return "service/{}/{}".format(service["clusterArn"].rsplit("/", 1)[-1], service["serviceName"])


def task_count(service: Mapping[str, Any], scalable_targets: Mapping[str, Any]) -> TaskCount:
    """Desired / running / min-max of one service for ``aurelius status`` (and ``--json``).

    Inputs: one ``services`` item of ecs:DescribeServices; application-autoscaling:DescribeScalableTargets
    (ServiceNamespace ecs, ResourceIds ["service/CLUSTER/SERVICE"]). IAM: ecs:DescribeServices,
    application-autoscaling:DescribeScalableTargets.
    """
    resource_id = scaling_resource_id(service)
    target = next(
        (
            t
            for t in scalable_targets.get("ScalableTargets", [])
            if t["ResourceId"] == resource_id and t["ScalableDimension"] == "ecs:service:DesiredCount"
        ),
        None,
    )
    return TaskCount(
        desired=service["desiredCount"],
        running=service["runningCount"],
        minimum=target["MinCapacity"] if target else None,
        maximum=target["MaxCapacity"] if target else None,
    )


# ------------------------------------------------------------------ the service role's needs
@dataclass(frozen=True)
class Permission:
    """Actions a role must be allowed on one resource ARN, with the request's context keys."""

    actions: tuple[str, ...]
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


SAMPLE_DEPLOYMENT_ID = "sampleDeploymentId1"


def service_role_update_needs(
    partition: str,
    region: str,
    account: str,
    cluster: str,
    service: str,
    family: str,
    passed_roles: Mapping[str, str],
) -> list[Permission]:
    """What the CloudFormation service role needs for a model update, on the ARNs IAM authorizes
    (doctor evaluates these with iam:SimulatePrincipalPolicy).

    From the registry schemas (tests/data/cfn-schemas): AWS::ECS::Service update (with
    ecs:StopServiceDeployment, how CloudFormation stops a deployment it rolls back) and
    AWS::ECS::TaskDefinition create/delete. ecs:RegisterTaskDefinition is authorized on the
    family's revision ARN (a role scoped to its family is refused on "*"); Deregister and
    Describe have no resource-level permissions. ``passed_roles``: role ARN -> the service it
    is passed to (``pass_role_targets`` by logical id, mapped to the roles' ARNs).
    """
    ecs = f"arn:{partition}:ecs:{region}:{account}"
    return [
        Permission(
            (
                "ecs:DescribeServices",
                "ecs:UpdateService",
                "ecs:ListServiceDeployments",
                "ecs:TagResource",
                "ecs:UntagResource",
                "ecs:ListTagsForResource",
            ),
            f"{ecs}:service/{cluster}/{service}",
        ),
        # These two act on one deployment of the service (resource type service-deployment in
        # the ECS service authorization reference); the id is a sample, IAM matches the pattern.
        Permission(
            ("ecs:DescribeServiceDeployments", "ecs:StopServiceDeployment"),
            f"{ecs}:service-deployment/{cluster}/{service}/{SAMPLE_DEPLOYMENT_ID}",
        ),
        Permission(("ecs:RegisterTaskDefinition", "ecs:TagResource"), f"{ecs}:task-definition/{family}:1"),
        Permission(("ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition"), "*"),
        *(
            Permission(("iam:PassRole",), role, {"iam:PassedToService": passed_to})
            for role, passed_to in sorted(passed_roles.items())
        ),
        # The task definition's handlers also read the roles they pass (iam:GetRole).
        *(
            Permission(("iam:GetRole",), role)
            for role, passed_to in sorted(passed_roles.items())
            if passed_to == "ecs-tasks.amazonaws.com"
        ),
    ]
