"""aurelius.infra_checks: the doctor/status checks of issues 18 and 20, fed plain dicts shaped as
boto3 returns the AWS answers (no AWS call is made by the functions under test)."""

from __future__ import annotations

import json

import pytest
from cfnlint.decode import cfn_yaml

from aurelius.infra_checks import (
    ECS_SCALING_SERVICE,
    ELB_SERVICE,
    InstanceCapacity,
    alarms_in_alarm,
    pass_role_targets,
    private_egress_findings,
    same_vpc_finding,
    scaling_fits_cluster_finding,
    service_linked_role_finding,
    task_count,
    tasks_per_instance,
    template_from_body,
)
from aurelius.sandbox.triggers import samconfig_deploy_parameters
from tests.helpers import REPO
from tests.iam_policy import PSEUDO, Request, Resolver, allowed

REGION = "us-east-1"


# ------------------------------------------------------------------ iam:PassRole targets
def test_each_role_is_passed_to_the_service_that_uses_it():
    # Given the service template (canary and rolling resources both present)
    template = cfn_yaml.load(str(REPO / "infra/ecs-service/template.yaml"))
    # Then the task roles go to ECS tasks, the canary's load balancer role to the ECS service
    assert pass_role_targets(template) == {
        "TaskRole": "ecs-tasks.amazonaws.com",
        "TaskExecutionRole": "ecs-tasks.amazonaws.com",
        "LoadBalancerRole": "ecs.amazonaws.com",
    }


@pytest.mark.parametrize("environment", ["dev", "prod"])  # dev rolls, prod is a canary
def test_doctors_pass_role_needs_are_allowed_by_the_service_role_for_rolling_and_canary(environment):
    # Given the CloudFormation service role as the trigger stack grants it in this environment
    _, parameters = samconfig_deploy_parameters(environment)
    role = cfn_yaml.load(str(REPO / "template.yaml"))["Resources"]["CloudFormationServiceRole"]["Properties"]
    policies = [Resolver(parameters)(p["PolicyDocument"]) for p in role["Policies"]]
    names = {
        "TaskRole": "task-role",
        "TaskExecutionRole": "exec-role",
        "LoadBalancerRole": "ecs-lb-role",
    }
    template = cfn_yaml.load(str(REPO / "infra/ecs-service/template.yaml"))
    for logical_id, service in pass_role_targets(template).items():
        name = (
            f"{parameters['BaseName']}-{names[logical_id]}-{parameters['EnvironmentName']}-{parameters['NameSuffix']}"
        )
        arn = f"arn:aws:iam::{PSEUDO['AWS::AccountId']}:role/{name}"
        # Then the need doctor checks (iam:PassRole to the service that uses the role) is allowed ...
        assert allowed(policies, Request("iam:PassRole", arn, {"iam:PassedToService": service})), (logical_id, service)
    # ... and the load balancer role may not go to ECS tasks (what doctor wrongly checked before)
    lb_role = f"arn:aws:iam::{PSEUDO['AWS::AccountId']}:role/{parameters['BaseName']}-ecs-lb-role-{parameters['EnvironmentName']}-{parameters['NameSuffix']}"
    assert not allowed(policies, Request("iam:PassRole", lb_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))


def test_a_yaml_template_body_reads_as_cfn_lint_reads_it_and_a_json_one_as_botocore_decoded_it():
    # Given the service template as cloudformation:GetTemplate returns a YAML body (text)
    text = (REPO / "infra/ecs-service/template.yaml").read_text(encoding="utf-8")
    # Then its intrinsics come out in long form, exactly as cfn-lint's loader gives them
    assert json.dumps(template_from_body(text), sort_keys=True, default=str) == json.dumps(
        cfn_yaml.load(str(REPO / "infra/ecs-service/template.yaml")), sort_keys=True, default=str
    )
    # and a JSON body (botocore decodes it into a dict) is taken as it is
    decoded = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Ref": "N"}}}}}
    assert template_from_body(decoded) == decoded


# ------------------------------------------------------------------ service-linked roles
@pytest.mark.parametrize("service", [ELB_SERVICE, ECS_SCALING_SERVICE])
def test_a_missing_service_linked_role_is_fine_only_when_it_can_be_created(service):
    assert service_linked_role_finding(service, exists=True, can_create=False).ok
    assert service_linked_role_finding(service, exists=False, can_create=True).ok
    missing = service_linked_role_finding(service, exists=False, can_create=False)
    assert not missing.ok and any(f"--aws-service-name {service}" in d for d in missing.details)


# ------------------------------------------------------------------ one VPC
def instance(instance_id, vpc, az="us-east-1a"):
    return {"InstanceId": instance_id, "VpcId": vpc, "Placement": {"AvailabilityZone": az}}


def subnet(subnet_id, vpc, az="us-east-1a"):
    return {"SubnetId": subnet_id, "VpcId": vpc, "AvailabilityZone": az}


def test_instances_in_the_tasks_vpc_pass():
    finding = same_vpc_finding([instance("i-1", "vpc-a")], [subnet("subnet-1", "vpc-a")])
    assert finding.ok and "vpc-a" in finding.summary


def test_instances_in_another_vpc_fail_and_are_named():
    # Given the shipped dev mistake: instances in the default VPC, tasks in another one
    finding = same_vpc_finding(
        [instance("i-1", "vpc-default"), instance("i-2", "vpc-a")], [subnet("subnet-1", "vpc-a")]
    )
    assert not finding.ok and "i-1" in finding.summary and "i-2" not in finding.summary


def test_no_instances_and_subnets_in_two_vpcs_fail():
    assert not same_vpc_finding([], [subnet("subnet-1", "vpc-a")]).ok
    assert not same_vpc_finding(
        [instance("i-1", "vpc-a")], [subnet("subnet-1", "vpc-a"), subnet("subnet-2", "vpc-b")]
    ).ok


def test_an_availability_zone_without_instances_is_a_detail_not_a_failure():
    finding = same_vpc_finding(
        [instance("i-1", "vpc-a", "us-east-1a")],
        [subnet("subnet-1", "vpc-a", "us-east-1a"), subnet("subnet-2", "vpc-a", "us-east-1b")],
    )
    assert finding.ok and any("us-east-1b" in d for d in finding.details)


# ------------------------------------------------------------------ private subnets reach AWS
def table(table_id, subnet_id, gateway=None, nat=None, main=False):
    routes = [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}]
    if gateway or nat:
        routes.append(
            {"DestinationCidrBlock": "0.0.0.0/0", **({"GatewayId": gateway} if gateway else {"NatGatewayId": nat})}
        )
    associations = [{"Main": True}] if main else [{"SubnetId": subnet_id, "Main": False}]
    return {"RouteTableId": table_id, "VpcId": "vpc-a", "Routes": routes, "Associations": associations}


def endpoint(name, kind="Interface", tables=()):
    return {
        "ServiceName": f"com.amazonaws.{REGION}.{name}",
        "VpcId": "vpc-a",
        "VpcEndpointType": kind,
        "State": "available",
        "RouteTableIds": list(tables),
    }


ALL_INTERFACES = [endpoint(n) for n in ("ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry")]


def test_a_nat_route_is_enough():
    (finding,) = private_egress_findings(
        [subnet("subnet-1", "vpc-a")], [table("rtb-1", "subnet-1", nat="nat-1")], [], REGION
    )
    assert finding.ok and "nat-1" in finding.summary


def test_without_nat_every_endpoint_is_needed_and_the_s3_gateway_on_the_subnets_table():
    subnets, tables = [subnet("subnet-1", "vpc-a")], [table("rtb-1", "subnet-1")]
    # Given all endpoints, S3 on the subnet's route table: fine
    (ok,) = private_egress_findings(subnets, tables, [*ALL_INTERFACES, endpoint("s3", "Gateway", ["rtb-1"])], REGION)
    assert ok.ok
    # Given the ECS agent endpoints missing (the README's old list): the instances never register
    partial = [e for e in ALL_INTERFACES if "ecs" not in e["ServiceName"]]
    (bad,) = private_egress_findings(subnets, tables, [*partial, endpoint("s3", "Gateway", ["rtb-1"])], REGION)
    assert not bad.ok and "ecs, ecs-agent, ecs-telemetry" in bad.details[0]
    # Given the S3 gateway on another route table
    (no_s3,) = private_egress_findings(subnets, tables, [*ALL_INTERFACES, endpoint("s3", "Gateway", ["rtb-9"])], REGION)
    assert not no_s3.ok and "s3 (gateway endpoint on rtb-1)" in no_s3.details[0]


def test_an_internet_gateway_route_does_not_help_tasks_without_public_ip():
    # Given a public subnet through its VPC's main route table
    (finding,) = private_egress_findings(
        [subnet("subnet-1", "vpc-a")], [table("rtb-main", "-", gateway="igw-1", main=True)], [], REGION
    )
    assert not finding.ok and "no public IP" in finding.summary


# ------------------------------------------------------------------ scaling fits the cluster
C6I_LARGE = {
    "VCpuInfo": {"DefaultVCpus": 2},
    "MemoryInfo": {"SizeInMiB": 4096},
    "NetworkInfo": {"MaximumNetworkInterfaces": 3},
}


def test_tasks_per_instance_is_the_tightest_of_cpu_memory_and_network_interfaces():
    capacity = InstanceCapacity.from_instance_type(C6I_LARGE)
    assert tasks_per_instance(capacity, 1024, 2048) == 1  # memory: 3840 MiB registered
    assert tasks_per_instance(capacity, 256, 512) == 2  # network interfaces: 3 - the primary one
    assert tasks_per_instance(capacity, 4096, 512) == 0


def test_the_shipped_prod_scaling_fits_its_clusters_group_during_a_deploy():
    # Given prod: scaling max 6 tasks of 1 vCPU / 2 GiB on c6i.large, the group's max 12
    from aurelius.settings import ClusterSettings, ServiceSettings, load_environment

    service = load_environment(
        REPO / "infra/ecs-service/management-scripts/service-settings.yml", ServiceSettings, "prod"
    )
    cluster = load_environment(
        REPO / "infra/ecs-cluster/management-scripts/service-settings.yml", ClusterSettings, "prod"
    )
    assert cluster.settings.instance_type == "c6i.large"
    finding = scaling_fits_cluster_finding(
        service.settings.most_tasks,
        service.settings.cpu,
        service.settings.memory,
        InstanceCapacity.from_instance_type(C6I_LARGE),
        cluster.settings.capacity.max,
    )
    # Then 12 tasks at the peak of a deploy fit in 12 instances
    assert finding.ok, finding


def test_scaling_beyond_the_group_fails_with_the_size_to_set():
    finding = scaling_fits_cluster_finding(10, 1024, 2048, InstanceCapacity.from_instance_type(C6I_LARGE), 12)
    assert not finding.ok and "capacity.max to 20" in finding.details[0]


# ------------------------------------------------------------------ deployment alarms
def test_deployment_alarms_already_in_alarm_are_listed():
    answer = {
        "MetricAlarms": [
            {"AlarmName": "a-errors", "StateValue": "ALARM"},
            {"AlarmName": "a-5xx", "StateValue": "OK"},
            {"AlarmName": "someone-elses", "StateValue": "ALARM"},
        ],
        "CompositeAlarms": [],
    }
    assert alarms_in_alarm(answer, ["a-errors", "a-5xx"]) == ["a-errors"]
    assert alarms_in_alarm({"MetricAlarms": []}, ["a-errors"]) == []


# ------------------------------------------------------------------ status: the count
SERVICE = {
    "serviceName": "aurelius-svc-prod-ml",
    "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/aurelius-cluster-prod-ml",
    "desiredCount": 5,
    "runningCount": 4,
}


def test_task_count_shows_desired_running_and_the_scaling_range():
    targets = {
        "ScalableTargets": [
            {
                "ResourceId": "service/aurelius-cluster-prod-ml/aurelius-svc-prod-ml",
                "ScalableDimension": "ecs:service:DesiredCount",
                "MinCapacity": 3,
                "MaxCapacity": 6,
            }
        ]
    }
    count = task_count(SERVICE, targets)
    assert count.as_dict() == {"desired": 5, "running": 4, "min": 3, "max": 6}
    assert str(count) == "4/5 tasks running, scaling 3-6"


def test_task_count_of_a_fixed_service_has_no_range():
    count = task_count(SERVICE, {"ScalableTargets": []})
    assert count.as_dict()["min"] is None and str(count) == "4/5 tasks running, fixed count"
