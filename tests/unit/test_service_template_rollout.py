"""Safe rollout in infra/ecs-service/template.yaml: smoke test environment, deployment alarms,
rolling vs canary.

moto ignores an ECS service's deployment configuration and load balancer settings, and runs no
deployment, so these tests check what the template SENDS to CloudFormation: its structure with
the conditions resolved for each strategy (rolling must stay what it was before canary existed),
and that every property name is one cfn-lint's bundled AWS::ECS::Service schema knows.
test_templates.py runs cfn-lint itself over the template.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.helpers import REPO

TEMPLATE = REPO / "infra/ecs-service/template.yaml"
NO_VALUE = object()


@functools.cache
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def resolve(node: Any, conditions: dict[str, bool]) -> Any:
    """The template as CloudFormation sees it for these condition values: Fn::If picked,
    AWS::NoValue removed (from mappings and lists), resources under a false Condition dropped."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        out = {}
        for key, value in node.items():
            if (
                isinstance(value, dict)
                and "Condition" in value
                and "Type" in value
                and not conditions[value["Condition"]]
            ):
                continue  # a resource that is not created
            resolved = resolve(value, conditions)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out
    if isinstance(node, list):
        return [item for item in (resolve(i, conditions) for i in node) if item is not NO_VALUE]
    return node


def variant(
    strategy: str, smoke: bool = False, scaling: frozenset[str] = frozenset(), signed: bool = False
) -> dict[str, Any]:
    """The template for one strategy; ``scaling``: what it tracks ({"requests", "cpu"}), empty = off;
    ``signed``: SigningTrust and SkopsTrustedTypes set."""
    canary, requests = strategy == "canary", "requests" in scaling
    conditions = {
        "IsCanary": canary,
        "HasSmokeTest": smoke,
        "HasSmokeTestExpected": smoke,
        "HasSmokeTestTolerance": smoke,
        "HasScaling": bool(scaling),
        "ScalesOnRequests": requests,
        "ScalesOnRequestsRolling": requests and not canary,
        "ScalesOnRequestsCanary": requests and canary,
        "ScalesOnCpu": "cpu" in scaling,
        "HasSigningTrust": signed,
        "HasSkopsTrustedTypes": signed,
    }
    assert set(conditions) == set(template()["Conditions"]), "a new condition needs a value here"
    return resolve(copy.deepcopy(template()), conditions)


def service(t: dict[str, Any]) -> dict[str, Any]:
    return t["Resources"]["Service"]["Properties"]


def container_env(t: dict[str, Any]) -> dict[str, Any]:
    (container,) = t["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    return [m["MetricStat"] for m in alarm["Properties"]["Metrics"] if "MetricStat" in m]


def server_metrics_module():
    # The model server's own definition of its metrics (server/, not installed in this venv).
    path = REPO / "server/aurelius_server/metrics.py"
    spec = importlib.util.spec_from_file_location("server_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ rolling (the default)


def test_rolling_keeps_the_one_target_group_service_with_circuit_breaker():
    # Given the template resolved for rolling
    t = variant("rolling")
    config = service(t)["DeploymentConfiguration"]
    # Then the deployment is today's rolling update, now also watched by the alarms
    assert config["Strategy"] == "ROLLING"
    assert "CanaryConfiguration" not in config and "BakeTimeInMinutes" not in config
    assert (config["MaximumPercent"], config["MinimumHealthyPercent"]) == (200, 100)
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    # ... with one target group, forwarded to directly, and no canary resources
    assert service(t)["LoadBalancers"] == [
        {
            "ContainerName": "model-server",
            "ContainerPort": {"Ref": "ContainerPort"},
            "TargetGroupArn": {"Ref": "TargetGroup"},
        }
    ]
    assert t["Resources"]["ListenerRule"]["Properties"]["Actions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
    ]
    assert "AlternateTargetGroup" not in t["Resources"] and "LoadBalancerRole" not in t["Resources"]


def test_rolling_is_the_template_default():
    assert template()["Parameters"]["RolloutStrategy"]["Default"] == "rolling"
    assert template()["Parameters"]["RolloutStrategy"]["AllowedValues"] == ["rolling", "canary"]


# ------------------------------------------------------------------ canary


def test_canary_uses_ecs_native_canary_with_the_settings_parameters():
    # Given the template resolved for canary
    config = service(variant("canary"))["DeploymentConfiguration"]
    # Then ECS shifts CanaryPercent for CanaryBakeTimeInMinutes, then bakes BakeTimeInMinutes
    assert config["Strategy"] == "CANARY"
    assert config["CanaryConfiguration"] == {
        "CanaryPercent": {"Ref": "CanaryPercent"},
        "CanaryBakeTimeInMinutes": {"Ref": "CanaryBakeTimeInMinutes"},
    }
    assert config["BakeTimeInMinutes"] == {"Ref": "BakeTimeInMinutes"}
    # ... and no circuit breaker: ECS documents it for rolling and blue/green only
    # (deployment-failure-detection.html); StartupFailuresAlarm stands in for it
    assert "DeploymentCircuitBreaker" not in config


def test_canary_gives_ecs_the_alternate_target_group_production_rule_and_role():
    # Given the template resolved for canary
    t = variant("canary")
    (balancer,) = service(t)["LoadBalancers"]
    # Then the service names the second target group, the production listener rule and the role
    assert balancer["AdvancedConfiguration"] == {
        "AlternateTargetGroupArn": {"Ref": "AlternateTargetGroup"},
        "ProductionListenerRule": {"Ref": "ListenerRule"},
        "RoleArn": {"Fn::GetAtt": ["LoadBalancerRole", "Arn"]},
    }
    # ... and the production rule forwards to both groups, all traffic on the primary
    (action,) = t["Resources"]["ListenerRule"]["Properties"]["Actions"]
    assert action == {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": {"Ref": "TargetGroup"}, "Weight": 100},
                {"TargetGroupArn": {"Ref": "AlternateTargetGroup"}, "Weight": 0},
            ]
        },
    }


def test_canary_property_names_are_in_the_bundled_ecs_service_schema():
    # Given cfn-lint's bundled schema of AWS::ECS::Service (the pinned cfn-lint 1.41)
    import cfnlint

    schema_path = Path(cfnlint.__file__).parent / "data/schemas/providers/us_east_1/aws-ecs-service.json"
    definitions = json.loads(schema_path.read_text())["definitions"]
    t = variant("canary")
    config = service(t)["DeploymentConfiguration"]
    (balancer,) = service(t)["LoadBalancers"]
    # Then every property the canary sets is one the schema declares
    assert set(config) <= set(definitions["DeploymentConfiguration"]["properties"])
    assert set(config["CanaryConfiguration"]) <= set(definitions["CanaryConfiguration"]["properties"])
    assert set(config["Alarms"]) == set(definitions["DeploymentAlarms"]["properties"])
    assert set(balancer["AdvancedConfiguration"]) <= set(definitions["AdvancedConfiguration"]["properties"])


def test_alternate_target_group_checks_health_exactly_like_the_primary():
    # Given both target groups (they swap roles at every canary deployment)
    resources = variant("canary")["Resources"]
    primary, alternate = resources["TargetGroup"]["Properties"], resources["AlternateTargetGroup"]["Properties"]
    # Then only their names differ
    assert {k: v for k, v in primary.items() if k != "Name"} == {k: v for k, v in alternate.items() if k != "Name"}
    assert alternate["Name"] == {"Ref": "AlternateTargetGroupName"}


def test_traffic_shifting_role_is_for_ecs_and_writes_only_this_stacks_load_balancing():
    # Given the role ECS assumes to shift traffic
    role = variant("canary")["Resources"]["LoadBalancerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    statements = {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}
    # Then only ECS assumes it (the trust policy of AWS's page for this role) ...
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert role["RoleName"] == {"Ref": "LoadBalancerRoleName"}
    # ... and its writes name this stack's target groups, listener and rule (reads are on "*":
    # Describe actions have no resource-level permissions)
    assert statements["RegisterTasksInTheTwoTargetGroups"]["Resource"] == [
        {"Ref": "TargetGroup"},
        {"Ref": "AlternateTargetGroup"},
    ]
    assert statements["MoveTheWeights"]["Resource"] == [{"Ref": "Listener"}, {"Ref": "ListenerRule"}]
    assert all(a.startswith("elasticloadbalancing:Describe") for a in statements["ReadLoadBalancing"]["Action"])


# ------------------------------------------------------------------ deployment alarms


@pytest.mark.parametrize("strategy", ["rolling", "canary"])
def test_the_four_alarms_roll_the_deployment_back(strategy):
    # Given the service of either strategy
    t = variant(strategy)
    alarms = service(t)["DeploymentConfiguration"]["Alarms"]
    # Then ECS watches the four alarms, by the names the alarms get, and rolls back on one
    assert alarms["Enable"] is True and alarms["Rollback"] is True
    assert alarms["AlarmNames"] == [
        {"Ref": "StartupFailuresAlarm"},
        {"Ref": "PredictionErrorRateAlarm"},
        {"Ref": "Target5xxAlarm"},
        {"Ref": "UnhealthyHostsAlarm"},
    ]
    names = {
        logical_id: t["Resources"][logical_id]["Properties"]["AlarmName"]
        for logical_id in ("StartupFailuresAlarm", "PredictionErrorRateAlarm", "Target5xxAlarm", "UnhealthyHostsAlarm")
    }
    assert names == {
        "StartupFailuresAlarm": {"Ref": "StartupFailuresAlarmName"},
        "PredictionErrorRateAlarm": {"Ref": "ErrorRateAlarmName"},
        "Target5xxAlarm": {"Ref": "Target5xxAlarmName"},
        "UnhealthyHostsAlarm": {"Ref": "UnhealthyHostsAlarmName"},
    }
    # and a quiet service (no data) never fails its deployment
    for logical_id in names:
        assert t["Resources"][logical_id]["Properties"]["TreatMissingData"] == "notBreaching"


def test_error_rate_alarm_watches_the_new_model_version_with_the_servers_own_metric_names():
    # Given the error-rate alarm and the model server's metric definitions
    alarm = variant("rolling")["Resources"]["PredictionErrorRateAlarm"]
    metrics = server_metrics_module()
    stats = metric_stats(alarm)
    # Then it divides PredictionErrors by Predictions of the server's namespace ...
    assert {s["Metric"]["MetricName"] for s in stats} == {"PredictionErrors", "Predictions"}
    assert {m["Name"] for m in metrics.METRICS} >= {"PredictionErrors", "Predictions"}
    for stat in stats:
        assert stat["Metric"]["Namespace"] == metrics.NAMESPACE
        assert stat["Stat"] == "Sum" and stat["Period"] == {"Ref": "AlarmPeriodSeconds"}
        # ... of exactly this service and the version this stack pins (the server's dimensions)
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "ServiceName", "Value": {"Ref": "ServiceName"}},
            {"Name": "ModelVersionId", "Value": {"Ref": "ModelVersionId"}},
        ]
        assert [d["Name"] for d in stat["Metric"]["Dimensions"]] == metrics.DIMENSIONS[0]
    (expression,) = [m for m in alarm["Properties"]["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True and "100 * errors / predictions" in expression["Expression"]
    assert alarm["Properties"]["Threshold"] == {"Ref": "ErrorRateThresholdPercent"}


@pytest.mark.parametrize(
    "logical_id, metric",
    [("Target5xxAlarm", "HTTPCode_Target_5XX_Count"), ("UnhealthyHostsAlarm", "UnHealthyHostCount")],
)
def test_target_group_alarms_watch_every_target_group_that_can_hold_new_tasks(logical_id, metric):
    # Given the alarm in both strategies
    groups = {}
    for strategy in ("rolling", "canary"):
        stats = metric_stats(variant(strategy)["Resources"][logical_id])
        assert {s["Metric"]["MetricName"] for s in stats} == {metric}
        assert {s["Metric"]["Namespace"] for s in stats} == {"AWS/ApplicationELB"}
        groups[strategy] = [
            next(d["Value"] for d in s["Metric"]["Dimensions"] if d["Name"] == "TargetGroup") for s in stats
        ]
    # Then rolling watches the one target group, canary both (they swap roles)
    assert groups["rolling"] == [{"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]}]
    assert groups["canary"] == [
        {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]},
        {"Fn::GetAtt": ["AlternateTargetGroup", "TargetGroupFullName"]},
    ]


# ------------------------------------------------------------------ the task's environment


def test_smoke_test_variables_are_set_only_when_configured():
    # Given the task definition with and without a smoke test
    with_smoke, without = container_env(variant("rolling", smoke=True)), container_env(variant("rolling", smoke=False))
    # Then SMOKE_TEST_* come from their parameters when set, and are absent (not empty) otherwise
    assert with_smoke["SMOKE_TEST_INSTANCES"] == {"Ref": "SmokeTestInstances"}
    assert with_smoke["SMOKE_TEST_EXPECTED"] == {"Ref": "SmokeTestExpected"}
    assert with_smoke["SMOKE_TEST_TOLERANCE"] == {"Ref": "SmokeTestTolerance"}
    assert not any(name.startswith("SMOKE_TEST_") for name in without)
    # and "set" means a non-empty parameter, empty by default
    conditions = template()["Conditions"]
    for condition, parameter in (
        ("HasSmokeTest", "SmokeTestInstances"),
        ("HasSmokeTestExpected", "SmokeTestExpected"),
        ("HasSmokeTestTolerance", "SmokeTestTolerance"),
    ):
        assert conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
        assert template()["Parameters"][parameter]["Default"] == ""


def test_service_name_reaches_the_server_as_its_metrics_dimension():
    assert container_env(variant("rolling"))["SERVICE_NAME"] == {"Ref": "ServiceName"}


def test_rollout_deadline_is_a_number_parameter_and_an_output():
    # Given the parameter the redeployer reads to cancel a stuck update
    parameter = template()["Parameters"]["RolloutDeadlineSeconds"]
    # Then it is a number of seconds, shown as an output too
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 60
    assert template()["Outputs"]["RolloutDeadlineSeconds"]["Value"] == {"Ref": "RolloutDeadlineSeconds"}


def test_the_demo_runs_the_model_server_with_the_environment_the_template_gives_the_task():
    from aurelius.sandbox.demo import TASK_ENVIRONMENT

    # Given the task's environment variables that come from stack parameters (all conditions on)
    env = container_env(variant("rolling", smoke=True, signed=True))
    from_parameters = {
        name: value["Ref"]
        for name, value in env.items()
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in template()["Parameters"]
    }
    # Then the demo, which builds the real server's environment from the stack's parameters,
    # maps exactly those (PORT is the demo's own free port; AWS_REGION comes from the sandbox)
    assert {k: v for k, v in from_parameters.items() if k != "PORT"} == TASK_ENVIRONMENT


@pytest.mark.parametrize("signed", [False, True])
def test_the_model_format_scan_and_signing_settings_reach_the_container(signed):
    # Given the template with and without trust material (and skops trusted types)
    env = container_env(variant("rolling", signed=signed))

    # Then the server's MODEL_* variables come from their stack parameters; the two optional
    # ones are unset (not empty) without a value, so the server reads "no trust" and "no types"
    assert env["MODEL_FORMAT"] == {"Ref": "ModelFormat"}
    assert env["MODEL_PICKLE_SCAN"] == {"Ref": "PickleScan"}
    assert env["MODEL_SIGNING_REQUIRED"] == {"Ref": "SigningRequired"}
    optional = {
        "MODEL_SIGNING_TRUST": {"Ref": "SigningTrust"},
        "MODEL_SKOPS_TRUSTED_TYPES": {"Ref": "SkopsTrustedTypes"},
    }
    assert {name: env.get(name) for name in optional} == (optional if signed else dict.fromkeys(optional))
