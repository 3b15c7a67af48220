"""Issue 20 scaling settings and issue 18 networking settings: validation, what the deploy
scripts send, and the shipped settings being consistent per environment. Pure: no AWS."""

from __future__ import annotations

import pytest

from aurelius.settings import (
    ClusterSettings,
    ElbSettings,
    ServiceSettings,
    SettingsError,
    load_environment,
    load_environments,
)
from tests.helpers import MINIMAL_SERVICE_SETTINGS, REPO, load_script

SERVICE_SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"
CLUSTER_SETTINGS = REPO / "infra/ecs-cluster/management-scripts/service-settings.yml"
ELB_SETTINGS = REPO / "infra/elb/management-scripts/service-settings.yml"


def service_settings(tmp_path, extra: str):
    path = tmp_path / "service-settings.yml"
    path.write_text(MINIMAL_SERVICE_SETTINGS + extra)
    return path


@pytest.fixture(scope="module")
def deploy_service():
    return load_script("infra/ecs-service/management-scripts/deploy-service.py")


@pytest.mark.parametrize(
    "extra, key, rule",
    [
        (
            "    scaling: {min: 4, max: 2, cpu_percent: 60}\n",
            "environments.local.scaling",
            "min (4) must be at most max (2)",
        ),
        ("    scaling: {min: 1, max: 2}\n", "environments.local.scaling", "requests_per_target and/or cpu_percent"),
        (
            "    scaling: {min: 0, max: 2, cpu_percent: 60}\n",
            "environments.local.scaling.min",
            "greater than or equal to 1",
        ),
        (
            "    scaling: {min: 1, max: 2, cpu_percent: 60, target: 3}\n",
            "environments.local.scaling.target",
            "unknown key",
        ),
        (
            "    desired_count: 3\n    scaling: {min: 1, max: 2, cpu_percent: 60}\n",
            "environments.local",
            "desired_count and scaling exclude each other",
        ),
    ],
)
def test_bad_scaling_settings_name_the_file_the_key_and_the_rule(tmp_path, extra, key, rule):
    path = service_settings(tmp_path, extra)
    with pytest.raises(SettingsError) as caught:
        load_environment(path, ServiceSettings, "local")
    assert caught.value.path == str(path) and caught.value.key == key and rule in caught.value.rule


def test_scaling_on_sends_the_range_targets_and_cooldowns(tmp_path, deploy_service):
    # Given scaling 3..9 on requests and CPU
    settings = load_environment(
        service_settings(
            tmp_path,
            "    scaling: {min: 3, max: 9, requests_per_target: 500, cpu_percent: 62.5, scale_in_cooldown: 600}\n",
        ),
        ServiceSettings,
        "local",
    ).settings
    # When the deploy script builds the parameters
    sent = {p["ParameterKey"]: p["ParameterValue"] for p in deploy_service.scaling_parameters(settings)}
    # Then the template gets the range and targets (DesiredCount only records the starting count)
    assert sent == {
        "DesiredCount": "3",
        "ScalingMinCapacity": "3",
        "ScalingMaxCapacity": "9",
        "ScalingRequestsPerTarget": "500",
        "ScalingCpuPercent": "62.5",
        "ScaleInCooldownSeconds": "600",
        "ScaleOutCooldownSeconds": "60",
    }
    assert (settings.starting_count, settings.most_tasks) == (3, 9)


def test_scaling_off_sends_desired_count_and_a_zero_maximum(tmp_path, deploy_service):
    settings = load_environment(service_settings(tmp_path, "    desired_count: 4\n"), ServiceSettings, "local").settings
    sent = {p["ParameterKey"]: p["ParameterValue"] for p in deploy_service.scaling_parameters(settings)}
    assert (sent["DesiredCount"], sent["ScalingMaxCapacity"]) == ("4", "0")
    assert (settings.starting_count, settings.most_tasks) == (4, 4)


def test_the_deadline_follows_the_scaling_range(tmp_path, deploy_service):
    # Given the same rolling rollout with a fixed count of 6, and scaling from 1 to 6
    def deadline(extra):
        settings = load_environment(service_settings(tmp_path, extra), ServiceSettings, "local").settings
        return int(
            {p["ParameterKey"]: p["ParameterValue"] for p in deploy_service.rollout_parameters(settings)}[
                "RolloutDeadlineSeconds"
            ]
        )

    # Then the range's deadline is at least the fixed one (few tasks trip the breaker slowest)
    assert deadline("    scaling: {min: 1, max: 6, cpu_percent: 60}\n") >= deadline("    desired_count: 6\n")


def test_shipped_settings_scale_prod_and_not_local():
    environments = load_environments(SERVICE_SETTINGS, ServiceSettings)
    assert environments["local"].settings.scaling is None
    prod = environments["prod"].settings.scaling
    assert prod is not None and prod.min >= 2 and prod.max > prod.min


@pytest.mark.parametrize("environment", ["local", "dev", "prod"])
def test_shipped_cluster_and_service_settings_put_tasks_in_the_clusters_vpc_and_subnets(environment):
    # Given the cluster's and the service's settings of one environment
    cluster = load_environment(CLUSTER_SETTINGS, ClusterSettings, environment).settings.network
    service = load_environment(SERVICE_SETTINGS, ServiceSettings, environment).settings.network
    # Then both use the default VPC, or the same VPC with the tasks in the instances' subnets
    # (awsvpc network interfaces attach to the instances: tasks cannot be placed elsewhere)
    assert cluster.default_vpc == service.default_vpc
    if not cluster.default_vpc:
        assert cluster.vpc_id == service.vpc_id
        assert set(service.subnet_ids) <= set(cluster.subnet_ids)


def test_vpc_endpoints_need_explicit_private_subnets(tmp_path):
    base = (
        "environments:\n  local:\n    base_name: aurelius\n    suffix: demo\n    instance_type: t3.medium\n"
        "    capacity: {min: 1, max: 2, desired: 1}\n"
    )
    endpoints = "    vpc_endpoints: {route_table_ids: [rtb-0123456789abcdef0], client_cidr: 10.0.0.0/16}\n"
    default = tmp_path / "default.yml"
    default.write_text(base + "    network: {default_vpc: true}\n" + endpoints)
    with pytest.raises(SettingsError, match="vpc_endpoints needs network.vpc_id"):
        load_environment(default, ClusterSettings, "local")
    explicit = tmp_path / "explicit.yml"
    explicit.write_text(
        base + "    network: {vpc_id: vpc-0123456789abcdef0, subnet_ids: [subnet-0aaa, subnet-0bbb]}\n" + endpoints
    )
    settings = load_environment(explicit, ClusterSettings, "local").settings
    script = load_script("infra/ecs-cluster/management-scripts/create-cluster.py")
    sent = {p["ParameterKey"]: p["ParameterValue"] for p in script.vpc_endpoint_parameters(settings)}
    assert sent == {
        "CreateVpcEndpoints": "true",
        "EndpointRouteTableIds": "rtb-0123456789abcdef0",
        "EndpointClientCidr": "10.0.0.0/16",
    }


def test_shipped_elb_prod_is_internal_like_its_allowed_clients():
    prod = load_environment(ELB_SETTINGS, ElbSettings, "prod").settings
    assert prod.network.load_balancer_scheme == "internal" and prod.allowed_ingress_cidr == "10.0.0.0/8"
