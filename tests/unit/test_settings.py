"""Settings files: every shipped file is valid; bad ones name the file, the key and the rule."""

from pathlib import Path

import pytest

from aurelius.settings import (
    ClusterSettings,
    ElbSettings,
    ServiceSettings,
    SettingsError,
    load_environment,
    load_environments,
)
from tests.helpers import MINIMAL_SERVICE_SETTINGS as GOOD_SERVICE
from tests.helpers import REPO

SHIPPED = [
    ("infra/ecs-cluster/management-scripts/service-settings.yml", ClusterSettings),
    ("infra/ecs-service/management-scripts/service-settings.yml", ServiceSettings),
    ("infra/elb/management-scripts/service-settings.yml", ElbSettings),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("relative, model", SHIPPED)
def test_shipped_settings_define_local_dev_and_prod(relative, model):
    environments = load_environments(REPO / relative, model)
    assert {"local", "dev", "prod"} <= set(environments)


def test_no_two_stacks_of_one_environment_share_a_resource_name():
    # The cluster and the no-Docker stack both have an Auto Scaling group and a launch template.
    for env in ("local", "dev", "prod"):
        seen: dict[str, str] = {}
        for relative, model in SHIPPED:
            for name in load_environment(REPO / relative, model, env).names.values():
                assert name not in seen, f"{name} is in {relative} and {seen[name]}"
                seen[name] = relative


def test_valid_service_settings_give_names_by_convention(tmp_path):
    env = load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "local")
    assert env.stack_name == "aurelius-service-stack-local-demo"
    assert env.names["alb"] == "aurelius-alb-local-demo"
    assert env.settings.model.uri == "s3://aurelius-models-local-demo/models/model.pkl"


@pytest.mark.parametrize(
    "old, new, key, rule",
    [
        ("    image: aurelius/model-server:0.1.0\n", "", "environments.local.image", "Field required"),
        (
            "    suffix: demo\n",
            "    suffix: demo\n    desired_count: two\n",
            "environments.local.desired_count",
            "integer",
        ),
        (
            "    suffix: demo\n",
            "    suffix: demo\n    desird_count: 2\n",
            "environments.local.desird_count",
            "unknown key",
        ),
        (
            "network: {default_vpc: true}",
            "network: {default_vpc: true, vpc_id: vpc-1}",
            "environments.local.network",
            "either",
        ),
        ("base_name: aurelius", "base_name: aurelius-inference-platform", "environments.local.base_name/suffix", "32"),
        ("base_name: aurelius", "base_name: Aurelius_1", "environments.local.base_name", "lower-case"),
    ],
)
def test_bad_setting_names_file_key_and_rule(tmp_path, old, new, key, rule):
    path = write(tmp_path, GOOD_SERVICE.replace(old, new))
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    message = str(info.value)
    assert str(path) in message and key in message and rule in message


def test_unknown_environment_lists_the_known_ones(tmp_path):
    with pytest.raises(SettingsError, match="unknown environment .*local"):
        load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "staging")


@pytest.mark.parametrize(
    "text, key", [("[]", "environments"), ("environments: 3", "environments"), (": bad: yaml: [", "(file)")]
)
def test_malformed_file_is_a_settings_error(tmp_path, text, key):
    with pytest.raises(SettingsError, match=key.replace("(", r"\(").replace(")", r"\)")):
        load_environment(write(tmp_path, text), ServiceSettings, "local")


def test_missing_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="file not found"):
        load_environment(tmp_path / "nope.yml", ServiceSettings, "local")


SERVICE_NETWORK = GOOD_SERVICE.replace(
    "network: {default_vpc: true}",
    "network: {vpc_id: vpc-0a, subnet_ids: [subnet-01, subnet-02], load_balancer_subnet_ids: [subnet-0a, subnet-0b], load_balancer_scheme: internal}",
)


def test_service_network_separates_load_balancer_subnets_from_task_subnets(tmp_path):
    # Given task subnets, load balancer subnets and a scheme
    network = load_environment(write(tmp_path, SERVICE_NETWORK), ServiceSettings, "local").settings.network
    # Then each is kept apart
    assert network.subnet_ids == ["subnet-01", "subnet-02"]
    assert network.load_balancer_subnet_ids == ["subnet-0a", "subnet-0b"]
    assert network.load_balancer_scheme == "internal"


def test_service_network_defaults_to_an_internet_facing_load_balancer_in_the_task_subnets(tmp_path):
    network = load_environment(write(tmp_path, GOOD_SERVICE), ServiceSettings, "local").settings.network
    assert network.load_balancer_scheme == "internet-facing" and network.load_balancer_subnet_ids is None


@pytest.mark.parametrize(
    "old, new, rule",
    [
        ("load_balancer_scheme: internal", "load_balancer_scheme: public", "String should match pattern"),
        (
            "load_balancer_subnet_ids: [subnet-0a, subnet-0b]",
            "load_balancer_subnet_ids: [subnet-0a]",
            "at least two subnets",
        ),
        (
            "load_balancer_subnet_ids: [subnet-0a, subnet-0b]",
            "load_balancer_subnet_ids: [subnet-0a, sg-1]",
            "not a subnet id",
        ),
    ],
)
def test_bad_service_network_names_file_key_and_rule(tmp_path, old, new, rule):
    path = write(tmp_path, SERVICE_NETWORK.replace(old, new))
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    assert "environments.local.network" in str(info.value) and rule in str(info.value)


def test_load_balancer_subnets_need_an_explicit_vpc(tmp_path):
    text = GOOD_SERVICE.replace(
        "network: {default_vpc: true}", "network: {default_vpc: true, load_balancer_subnet_ids: [subnet-0a, subnet-0b]}"
    )
    with pytest.raises(SettingsError, match="load_balancer_subnet_ids needs vpc_id"):
        load_environment(write(tmp_path, text), ServiceSettings, "local")


def test_prod_example_puts_an_internet_facing_load_balancer_in_other_subnets_than_the_tasks():
    network = load_environment(REPO / SHIPPED[1][0], ServiceSettings, "prod").settings.network
    assert network.load_balancer_scheme == "internet-facing"
    assert network.load_balancer_subnet_ids and not set(network.load_balancer_subnet_ids) & set(network.subnet_ids)


def test_network_of_cluster_settings_rejects_load_balancer_keys(tmp_path):
    # Only the service has a load balancer with its own subnets: a cluster file with the key is a typo
    text = (
        (REPO / SHIPPED[0][0])
        .read_text()
        .replace("\n      default_vpc: true", "\n      default_vpc: true\n      load_balancer_scheme: internal", 1)
    )
    with pytest.raises(SettingsError, match="unknown key"):
        load_environment(write(tmp_path, text), ClusterSettings, "local")
