"""The links around the service: where its tasks run, what room the cluster has, the roles AWS
creates for it, and the alarms that guard its rollouts (issues 18 and 20).

Each check makes the read-only calls its docstring names and hands the answers to the pure
functions of aurelius.infra_checks. On a simulator (moto) that cannot answer a question
truthfully the check says "not checkable here", never passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.aws_errors import error_code
from aurelius.doctor.check import FAIL, NOT_CHECKABLE, OK, SKIPPED, WARNING, Check, failed_call
from aurelius.doctor.iam import Arns, Need, check_role_permissions, service_linked_role_need
from aurelius.infra_checks import (
    SERVICE_LINKED_ROLES,
    Finding,
    InstanceCapacity,
    alarms_in_alarm,
    private_egress_findings,
    same_vpc_finding,
    scaling_fits_cluster_finding,
    service_linked_role_finding,
)

AWS_CALL_ERRORS = (ClientError, BotoCoreError)
SERVICE_SCRIPT = "python infra/ecs-service/management-scripts/deploy-service.py"


def as_check(name: str, finding: Finding) -> Check:
    """A Finding in doctor's words: its summary (and notes) as the detail, what to fix as the fix."""
    if finding.ok:
        return Check(name, OK, "; ".join((finding.summary, *finding.details)))
    return Check(name, FAIL, finding.summary, "; ".join(finding.details))


def describe_service(ecs, cluster: str, service: str) -> dict[str, Any] | None:
    """ecs:DescribeServices of the service; None when it does not exist (or is INACTIVE)."""
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    return next((s for s in found if s.get("status") == "ACTIVE"), None)


def task_subnet_ids(
    service: Mapping[str, Any] | None, stack_parameters: Mapping[str, str], configured: Sequence[str] | None
) -> list[str]:
    """The task subnets: the ECS service's (ecs:DescribeServices), else the service stack's
    TaskSubnetIds parameter, else the settings' network.subnet_ids (none for default_vpc).

    The parameter is read for its subnet ids only: moto echoes a list parameter as a Python
    list's text after an update (docs/moto.md).
    """
    if service:
        subnets = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {}).get("subnets")
        if subnets:
            return list(subnets)
    from_stack = re.findall(r"subnet-[0-9a-f]+", stack_parameters.get("TaskSubnetIds", ""))
    return from_stack or list(configured or [])


# ------------------------------------------------------------------ one VPC
def check_same_vpc(ecs, ec2, cluster: str, subnets: Sequence[Mapping[str, Any]], simulated: bool) -> Check:
    """The cluster's container instances are in the VPC of the task subnets.

    Calls: ecs:ListContainerInstances, ecs:DescribeContainerInstances (their EC2 ids),
    ec2:DescribeInstances (their VPC and zone); ``subnets`` come from ec2:DescribeSubnets.
    """
    name = "cluster and tasks in one VPC"
    try:
        arns = [
            arn
            for page in ecs.get_paginator("list_container_instances").paginate(cluster=cluster)
            for arn in page.get("containerInstanceArns", [])
        ]
        if not arns:
            if simulated:
                return Check(name, NOT_CHECKABLE, "the simulator registers no container instances")
            return Check(
                name,
                SKIPPED,
                f"{cluster} has no container instance yet (checked once its capacity provider starts one)",
            )
        # DescribeContainerInstances takes at most 100 per call.
        ids = [
            i["ec2InstanceId"]
            for start in range(0, len(arns), 100)
            for i in ecs.describe_container_instances(cluster=cluster, containerInstances=arns[start : start + 100])[
                "containerInstances"
            ]
        ]
        instances = [
            i
            for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
            for reservation in page["Reservations"]
            for i in reservation["Instances"]
        ]
    except AWS_CALL_ERRORS as exc:
        return failed_call(
            name, exc, "ecs:ListContainerInstances / ecs:DescribeContainerInstances / ec2:DescribeInstances"
        )
    return as_check(name, same_vpc_finding(instances, subnets))


# ------------------------------------------------------------------ private subnets reach AWS
def check_task_egress(ec2, subnets: Sequence[Mapping[str, Any]], region: str, simulated: bool) -> Check:
    """Each task subnet reaches ECR, S3, Logs and ECS: a NAT route or the VPC endpoints.

    Calls: ec2:DescribeRouteTables and ec2:DescribeVpcEndpoints (filter vpc-id), for each VPC of
    ``subnets`` (from ec2:DescribeSubnets).
    """
    name = "task subnets reach AWS"
    vpcs = sorted({s["VpcId"] for s in subnets})
    try:
        route_tables, endpoints = [], []
        for vpc in vpcs:
            vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
            for page in ec2.get_paginator("describe_route_tables").paginate(Filters=vpc_filter):
                route_tables.extend(page["RouteTables"])
            for page in ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=vpc_filter):
                endpoints.extend(page["VpcEndpoints"])
    except AWS_CALL_ERRORS as exc:
        return failed_call(name, exc, "ec2:DescribeRouteTables / ec2:DescribeVpcEndpoints")
    findings = private_egress_findings(subnets, route_tables, endpoints, region)
    failed = [f for f in findings if not f.ok]
    if failed and simulated:
        # The simulator's default VPC routes through an internet gateway and runs no task.
        return Check(name, NOT_CHECKABLE, "the simulator runs no tasks; on AWS: " + failed[0].summary)
    if failed:
        return Check(name, FAIL, "; ".join(f.summary for f in failed), "; ".join(failed[0].details))
    return Check(name, OK, "; ".join(f.summary for f in findings))


# ------------------------------------------------------------------ room for a deploy
def _group_names(ecs, cluster: str) -> list[str]:
    clusters = ecs.describe_clusters(clusters=[cluster])["clusters"]
    providers = clusters[0].get("capacityProviders", []) if clusters else []
    if not providers:
        return []
    described = ecs.describe_capacity_providers(capacityProviders=providers)["capacityProviders"]
    arns = [p.get("autoScalingGroupProvider", {}).get("autoScalingGroupArn", "") for p in described]
    return [arn.split("autoScalingGroupName/", 1)[-1] for arn in arns if arn]


def _instance_type(ec2, group: Mapping[str, Any]) -> str | None:
    template = group.get("LaunchTemplate") or (
        group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
    )
    if not template:
        return group["Instances"][0]["InstanceType"] if group.get("Instances") else None
    ref = (
        {"LaunchTemplateId": template["LaunchTemplateId"]}
        if template.get("LaunchTemplateId")
        else {"LaunchTemplateName": template["LaunchTemplateName"]}
    )
    versions = ec2.describe_launch_template_versions(**ref, Versions=[str(template.get("Version", "$Default"))])
    return versions["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("InstanceType")


def check_cluster_room(
    ecs, autoscaling, ec2, cluster: str, most_tasks: int, cpu: int, memory: int, simulated: bool
) -> Check:
    """The cluster's Auto Scaling groups can hold ``most_tasks`` (scaling.max, or desired_count)
    during a deploy, which starts a full new set next to the old one (MaximumPercent 200).

    Calls: ecs:DescribeClusters and ecs:DescribeCapacityProviders (the groups),
    autoscaling:DescribeAutoScalingGroups (MaxSize, launch template),
    ec2:DescribeLaunchTemplateVersions (instance type), ec2:DescribeInstanceTypes (its size).
    Several groups: their MaxSize added up, each instance counted as the smallest type.
    """
    name = "cluster room for a deploy"
    try:
        names = _group_names(ecs, cluster)
        if not names:
            why = "no capacity provider with an Auto Scaling group"
            return Check(name, NOT_CHECKABLE if simulated else SKIPPED, f"{cluster} has {why}")
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]
        types = {t for t in (_instance_type(ec2, g) for g in groups) if t}
        if not groups or not types:
            return Check(name, SKIPPED, f"the instance type of {', '.join(names)} is not known")
        described = ec2.describe_instance_types(InstanceTypes=sorted(types))["InstanceTypes"]
    except AWS_CALL_ERRORS as exc:
        return failed_call(
            name,
            exc,
            "ecs:DescribeCapacityProviders / autoscaling:DescribeAutoScalingGroups / "
            "ec2:DescribeLaunchTemplateVersions / ec2:DescribeInstanceTypes",
        )
    smallest = min((InstanceCapacity.from_instance_type(t) for t in described), key=lambda c: (c.vcpus, c.memory_mib))
    group_max = sum(g["MaxSize"] for g in groups)
    return as_check(name, scaling_fits_cluster_finding(most_tasks, cpu, memory, smallest, group_max))


# ------------------------------------------------------------------ deployment alarms
def check_deployment_alarms(cloudwatch, service: Mapping[str, Any], simulated: bool, environment: str) -> Check:
    """The service's deployment alarms exist and none is already in ALARM.

    ECS ignores an alarm that is in ALARM when a deployment starts, so such an alarm will not
    protect the next rollout (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html):
    a warning, not a failure (the service runs). Calls: cloudwatch:DescribeAlarms of the names
    in the service's deploymentConfiguration (ecs:DescribeServices).
    """
    name = "deployment alarms"
    names = service.get("deploymentConfiguration", {}).get("alarms", {}).get("alarmNames", [])
    if not names:
        if simulated:
            return Check(name, NOT_CHECKABLE, "the simulator keeps no deployment configuration of a service")
        return Check(
            name,
            FAIL,
            f"{service['serviceName']} has no deployment alarms: a version that starts but fails is not rolled back",
            f"{SERVICE_SCRIPT} --environment {environment}",
        )
    try:
        answer: dict[str, list[Any]] = {"MetricAlarms": [], "CompositeAlarms": []}
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            answer["MetricAlarms"] += page.get("MetricAlarms", [])
            answer["CompositeAlarms"] += page.get("CompositeAlarms", [])
    except AWS_CALL_ERRORS as exc:
        return failed_call(name, exc, "cloudwatch:DescribeAlarms")
    found = {a["AlarmName"] for a in answer["MetricAlarms"] + answer["CompositeAlarms"]}
    missing = sorted(set(names) - found)
    if missing:
        return Check(
            name,
            FAIL,
            f"deployment alarms that do not exist: {', '.join(missing)}",
            f"{SERVICE_SCRIPT} --environment {environment}",
        )
    firing = alarms_in_alarm(answer, names)
    if firing:
        return Check(
            name,
            WARNING,
            f"already in ALARM: {', '.join(firing)}; ECS ignores an alarm in ALARM when a deployment starts, "
            "so it will not protect the next rollout",
            "find why it fires (aws cloudwatch describe-alarm-history --alarm-name NAME) before the next model upload",
        )
    return Check(name, OK, f"{len(names)} alarms, none in ALARM")


# ------------------------------------------------------------------ service-linked roles
def check_service_linked_role(
    iam, service: str, service_role: str | None, arns: Arns, simulated: bool, fix: str
) -> Check:
    """The service-linked role of ``service`` exists, or the CloudFormation service role may create it.

    Calls: iam:GetRole (NoSuchEntity: missing), then iam:SimulatePrincipalPolicy of
    iam:CreateServiceLinkedRole on the service role (``service_linked_role_need``).
    """
    role_name = SERVICE_LINKED_ROLES[service]
    name = f"service-linked role {role_name}"
    try:
        iam.get_role(RoleName=role_name)
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            return failed_call(name, exc, "iam:GetRole")
    except BotoCoreError as exc:
        return failed_call(name, exc, "iam:GetRole")
    else:
        return as_check(name, service_linked_role_finding(service, exists=True, can_create=False))
    if not service_role:
        return Check(name, SKIPPED, f"{role_name} does not exist; whether it can be created needs the service role")
    need: Need = service_linked_role_need(arns, service)
    simulation = check_role_permissions(iam, name, service_role, [need], fix, simulated)
    if simulation.status not in (OK, FAIL):
        return Check(name, simulation.status, f"{role_name} does not exist; {simulation.detail}", simulation.fix)
    return as_check(name, service_linked_role_finding(service, exists=False, can_create=simulation.status == OK))
