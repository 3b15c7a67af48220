"""Issue 20 and 18 in infra/ecs-service/template.yaml: scaling, the start-up failure alarm, and
the model's load time in the health check grace and the unhealthy-targets alarm.

moto skips Application Auto Scaling, metric filters and alarms' evaluation (docs/moto.md), so
these tests check what the template sends to CloudFormation, resolved per strategy and scaling
setting (tests/unit/test_service_template_rollout.py's ``variant``); cfn-lint checks the
property names (tests/unit/test_templates.py).
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO
from tests.unit.test_service_template_rollout import service, template, variant

BOTH = frozenset({"requests", "cpu"})


@pytest.mark.parametrize("strategy", ["rolling", "canary"])
@pytest.mark.parametrize("scaling", [frozenset({"requests"}), frozenset({"cpu"}), BOTH])
def test_with_scaling_the_service_has_no_desired_count_so_no_update_resets_it(strategy, scaling):
    # Given the template with scaling on, whatever it tracks
    t = variant(strategy, scaling=scaling)
    # Then the service resource sends no DesiredCount (AWS: omitted from the update), and the
    # scalable target holds the range
    assert "DesiredCount" not in service(t)
    target = t["Resources"]["ScalableTarget"]["Properties"]
    assert target["ServiceNamespace"] == "ecs" and target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert target["ResourceId"] == {"Fn::Sub": "service/${ClusterName}/${Service.Name}"}
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Ref": "ScalingMinCapacity"},
        {"Ref": "ScalingMaxCapacity"},
    )
    # ... with Application Auto Scaling's service-linked role (no role to pass)
    assert "RoleARN" not in target


@pytest.mark.parametrize("strategy", ["rolling", "canary"])
def test_without_scaling_the_service_runs_desired_count_and_nothing_scales(strategy):
    t = variant(strategy)
    assert service(t)["DesiredCount"] == {"Ref": "DesiredCount"}
    assert not [r for r in t["Resources"].values() if r["Type"].startswith("AWS::ApplicationAutoScaling::")]


def test_scaling_is_off_unless_a_maximum_is_given():
    # ScalingMaxCapacity 0 (the default) turns scaling off
    assert template()["Parameters"]["ScalingMaxCapacity"]["Default"] == 0
    assert template()["Conditions"]["HasScaling"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ScalingMaxCapacity"}, 0]}]}


def policies(t):
    return {k: r["Properties"] for k, r in t["Resources"].items() if r["Type"].endswith("::ScalingPolicy")}


def test_rolling_tracks_requests_per_target_of_its_one_target_group():
    # Given rolling with request tracking
    (policy,) = policies(variant("rolling", scaling=frozenset({"requests"}))).values()
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    # Then it is AWS's predefined metric on the one target group
    assert policy["PolicyType"] == "TargetTrackingScaling" and policy["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    assert config["TargetValue"] == {"Ref": "ScalingRequestsPerTarget"}
    assert config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": {"Fn::Sub": "${LoadBalancer.LoadBalancerFullName}/${TargetGroup.TargetGroupFullName}"},
    }


def test_canary_tracks_requests_over_both_target_groups_because_they_swap_roles():
    # Given canary with request tracking
    (policy,) = policies(variant("canary", scaling=frozenset({"requests"}))).values()
    metrics = policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    stats = {m["Id"]: m["MetricStat"] for m in metrics if "MetricStat" in m}
    (expression,) = [m for m in metrics if "Expression" in m]
    # Then requests and healthy targets of both groups feed one requests-per-task series
    groups = {
        (s["Metric"]["MetricName"], d["Value"]["Fn::GetAtt"][0])
        for s in stats.values()
        for d in s["Metric"]["Dimensions"]
        if d["Name"] == "TargetGroup"
    }
    assert groups == {
        ("RequestCount", "TargetGroup"),
        ("RequestCount", "AlternateTargetGroup"),
        ("HealthyHostCount", "TargetGroup"),
        ("HealthyHostCount", "AlternateTargetGroup"),
    }
    assert expression["ReturnData"] is True and all(m["ReturnData"] is False for m in metrics if "MetricStat" in m)
    assert set(re.findall(r"[a-z][A-Za-z]+(?=[,)])", expression["Expression"])) == set(stats)


def test_cpu_tracking_uses_the_services_average_cpu():
    (policy,) = policies(variant("canary", scaling=frozenset({"cpu"}))).values()
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert config["TargetValue"] == {"Ref": "ScalingCpuPercent"}
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (
        {"Ref": "ScaleInCooldownSeconds"},
        {"Ref": "ScaleOutCooldownSeconds"},
    )


def test_both_targets_make_two_policies():
    assert len(policies(variant("rolling", scaling=BOTH))) == 2


# ------------------------------------------------------------------ a slow good model, a bad one


def test_ecs_ignores_health_checks_for_the_models_load_time():
    assert service(variant("canary"))["HealthCheckGracePeriodSeconds"] == {"Ref": "ModelLoadSeconds"}


def test_unhealthy_alarm_needs_every_period_of_a_window_longer_than_a_good_load():
    alarm = variant("rolling")["Resources"]["UnhealthyHostsAlarm"]["Properties"]
    assert alarm["EvaluationPeriods"] == {"Ref": "UnhealthyHostsEvaluationPeriods"}
    assert alarm["DatapointsToAlarm"] == {"Ref": "UnhealthyHostsEvaluationPeriods"}


def test_start_up_failure_alarm_counts_the_servers_startup_failed_lines_of_the_new_version():
    # Given the metric filter, the alarm, and the model server's source
    resources = variant("canary")["Resources"]
    metric_filter = resources["StartupFailuresMetricFilter"]["Properties"]
    alarm = resources["StartupFailuresAlarm"]["Properties"]
    server = "\n".join(p.read_text() for p in (REPO / "server/aurelius_server").glob("*.py"))
    # Then the filter matches the event the server logs when it cannot start, with its version field
    assert metric_filter["LogGroupName"] == {"Ref": "LogGroup"}
    assert metric_filter["FilterPattern"] == '{ $.event = "startup_failed" }'
    assert '"startup_failed"' in server and "model_version_id=" in server
    (transformation,) = metric_filter["MetricTransformations"]
    assert transformation["Dimensions"] == [{"Key": "ModelVersionId", "Value": "$.model_version_id"}]
    # ... and the alarm fires on the first failure of the version this stack deploys
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert alarm["Dimensions"] == [{"Name": "ModelVersionId", "Value": {"Ref": "ModelVersionId"}}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("Sum", 1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def _parameters_referenced(node, parameters):
    if isinstance(node, dict):
        found = {node["Ref"]} & parameters if isinstance(node.get("Ref"), str) else set()
        return found.union(*(_parameters_referenced(v, parameters) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_parameters_referenced(v, parameters) for v in node))
    return set()


@pytest.mark.parametrize("strategy", ["rolling", "canary"])
def test_no_parameter_change_rewrites_the_listener_rule_and_resets_canary_weights(strategy):
    # Given the production listener rule (a CloudFormation update of it writes the template's
    # weights, 100 on the primary group, whichever group ECS left the traffic on)
    rule = variant(strategy)["Resources"]["ListenerRule"]["Properties"]
    parameters = set(template()["Parameters"]) - {"RolloutStrategy"}
    # Then it refers to no parameter a model update or a settings change can move (the strategy
    # itself aside: switching it is a different rule by design)
    assert _parameters_referenced(rule, parameters) == set()
