"""Safe-rollout settings: the smoke test and the rollout block of the service settings, what the
deploy script turns them into (stack parameters), and the rollout deadline it computes.

Pure: settings files in tmp_path, the deploy script's parameter builders called directly, no AWS.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aurelius.rollout import (
    DEFAULT_MARGIN_SECONDS,
    Timing,
    circuit_breaker_seconds,
    load_template,
    longest_good_load_seconds,
    rollout_deadline_seconds,
    startup_failure_rollback_seconds,
    template_timing,
    unhealthy_alarm_periods,
    worst_circuit_breaker_seconds,
)
from aurelius.settings import Rollout, ServiceSettings, SettingsError, load_environment
from tests.helpers import MINIMAL_SERVICE_SETTINGS, REPO, load_script

SERVICE_TEMPLATE = REPO / "infra/ecs-service/template.yaml"
SHIPPED = REPO / "infra/ecs-service/management-scripts/service-settings.yml"


def settings_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "service-settings.yml"
    path.write_text(MINIMAL_SERVICE_SETTINGS + extra)
    return path


def load(tmp_path: Path, extra: str) -> ServiceSettings:
    return load_environment(settings_with(tmp_path, extra), ServiceSettings, "local").settings


@pytest.fixture(scope="module")
def script():
    return load_script("infra/ecs-service/management-scripts/deploy-service.py")


def values(parameters: list[dict]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in parameters}


# ------------------------------------------------------------------ validation


def test_without_smoke_test_or_rollout_the_service_rolls_as_before(tmp_path):
    # Given settings that name neither block
    settings = load(tmp_path, "")
    # Then there is no smoke test and the rollout is the rolling update with default alarms
    assert settings.smoke_test is None
    assert settings.rollout.strategy == "rolling"
    assert settings.rollout.deadline_seconds is None
    assert settings.rollout.alarms.error_rate_percent == 5.0


def test_a_valid_smoke_test_and_canary_are_read(tmp_path):
    # Given a smoke test with expected values and a canary rollout
    settings = load(
        tmp_path,
        "    smoke_test: {instances: [[1, 2.5], [3, 4]], expected: [3.5, 7], tolerance: 0.01}\n"
        "    rollout: {strategy: canary, canary_percent: 12.5, canary_bake_minutes: 3, bake_minutes: 4,"
        " alarms: {error_rate_percent: 2, period_seconds: 30}}\n",
    )
    # Then both are typed as given
    assert settings.smoke_test.instances == [[1.0, 2.5], [3.0, 4.0]]
    assert settings.smoke_test.expected == [3.5, 7.0] and settings.smoke_test.tolerance == 0.01
    assert (settings.rollout.strategy, settings.rollout.canary_percent) == ("canary", 12.5)
    assert settings.rollout.alarms.period_seconds == 30


@pytest.mark.parametrize(
    "extra, key, rule",
    [
        ("    smoke_test: {instances: []}\n", "smoke_test.instances", "at least 1"),
        ("    smoke_test: {instances: [[]]}\n", "smoke_test.instances", "at least one number"),
        ("    smoke_test: {instances: [[1, 2], [3]]}\n", "smoke_test.instances", "same number of values"),
        ("    smoke_test: {instances: [[1, two]]}\n", "smoke_test.instances.0.1", "valid number"),
        ("    smoke_test: {instances: [[1, true]]}\n", "smoke_test.instances.0.1", "number"),
        ("    smoke_test: {instances: [[1, .nan]]}\n", "smoke_test.instances.0.1", "finite"),
        ("    smoke_test: {instances: [[1], [2]], expected: [1]}\n", "smoke_test", "1 values for 2 rows"),
        ("    smoke_test: {instances: [[1]], tolerance: 0.1}\n", "smoke_test", "tolerance needs expected"),
        (
            "    smoke_test: {instances: [[1]], expected: [1], tolerance: -1}\n",
            "smoke_test.tolerance",
            "greater than or equal",
        ),
        ("    smoke_test: {instances: [[1]], rows: [[1]]}\n", "smoke_test.rows", "unknown key"),
        ("    rollout: {strategy: blue-green}\n", "rollout.strategy", "'rolling' or 'canary'"),
        ("    rollout: {canary_percent: 10.05}\n", "rollout.canary_percent", "multiple of 0.1"),
        ("    rollout: {canary_percent: 100}\n", "rollout.canary_percent", "less than 100"),
        ("    rollout: {canary_bake_minutes: 1441}\n", "rollout.canary_bake_minutes", "1440"),
        ("    rollout: {deadline_seconds: 30}\n", "rollout.deadline_seconds", "greater than or equal to 60"),
        ("    rollout: {alarms: {period_seconds: 45}}\n", "rollout.alarms.period_seconds", "multiple of 60"),
        ("    rollout: {alarms: {error_rate_percent: 0}}\n", "rollout.alarms.error_rate_percent", "greater than 0"),
    ],
)
def test_bad_smoke_test_or_rollout_names_file_key_and_rule(tmp_path, extra, key, rule):
    # Given a settings file with one bad value in the new blocks
    path = settings_with(tmp_path, extra)
    # When it is loaded
    with pytest.raises(SettingsError) as info:
        load_environment(path, ServiceSettings, "local")
    # Then the error names the file, the key and the rule
    message = str(info.value)
    assert message.startswith(f"{path}: environments.local.{key}: "), message
    assert rule in message, message


def test_shipped_settings_put_prod_on_canary_and_keep_local_and_dev_rolling():
    # Given the shipped service settings
    strategies = {
        env: load_environment(SHIPPED, ServiceSettings, env).settings.rollout.strategy
        for env in ("local", "dev", "prod")
    }
    # Then prod takes traffic through a canary, the fast environments roll
    assert strategies == {"local": "rolling", "dev": "rolling", "prod": "canary"}


# ------------------------------------------------------------------ what the script sends


def test_smoke_test_becomes_json_parameters_and_absent_means_empty(tmp_path, script):
    # Given a smoke test with expected values, and settings without one
    with_smoke = load(
        tmp_path, "    smoke_test: {instances: [[1, 2.5], [3, 4]], expected: [3.5, 7], tolerance: 0.01}\n"
    )
    without = load(tmp_path, "")
    # When the deploy script builds the parameters
    sent, empty = values(script.smoke_test_parameters(with_smoke)), values(script.smoke_test_parameters(without))
    # Then they are the JSON the server parses (SMOKE_TEST_*), and empty when there is no smoke test
    assert json.loads(sent["SmokeTestInstances"]) == [[1, 2.5], [3, 4]]
    assert sent["SmokeTestInstances"] == "[[1,2.5],[3,4]]"
    assert json.loads(sent["SmokeTestExpected"]) == [3.5, 7]
    assert float(sent["SmokeTestTolerance"]) == 0.01
    assert empty == {"SmokeTestInstances": "", "SmokeTestExpected": "", "SmokeTestTolerance": ""}


def test_rollout_parameters_carry_strategy_canary_alarms_and_deadline(tmp_path, script):
    # Given a canary rollout with an explicit deadline
    settings = load(
        tmp_path,
        "    rollout: {strategy: canary, canary_percent: 12.5, canary_bake_minutes: 3, bake_minutes: 4, deadline_seconds: 1800,"
        " alarms: {error_rate_percent: 2.5, target_5xx_count: 7, unhealthy_hosts: 2, period_seconds: 30, evaluation_periods: 3}}\n",
    )
    # When the deploy script builds the parameters
    sent = values(script.rollout_parameters(settings))
    # Then every value reaches its template parameter, as text CloudFormation accepts
    assert sent == {
        "RolloutStrategy": "canary",
        "CanaryPercent": "12.5",
        "CanaryBakeTimeInMinutes": "3",
        "BakeTimeInMinutes": "4",
        "ErrorRateThresholdPercent": "2.5",
        "Target5xxThreshold": "7",
        "UnhealthyHostsThreshold": "2",
        "AlarmPeriodSeconds": "30",
        "AlarmEvaluationPeriods": "3",
        # the default model load (600 s) + 2 healthy checks of 10 s = 620 s: 21 periods of 30 s,
        # + 1 partial period + the 3 evaluation periods
        "ModelLoadSeconds": "600",
        "UnhealthyHostsEvaluationPeriods": "25",
        "RolloutDeadlineSeconds": "1800",
    }


def test_every_parameter_the_script_builds_is_a_template_parameter(tmp_path, script):
    # Given the parameters of names, smoke test and rollout
    env = load_environment(SHIPPED, ServiceSettings, "prod")
    sent = [
        *script.name_parameters(env),
        *script.smoke_test_parameters(env.settings),
        *script.rollout_parameters(env.settings),
    ]
    declared = load_template(SERVICE_TEMPLATE)["Parameters"]
    # Then the template declares each of them (a typo would fall back to a Default silently)
    assert [p["ParameterKey"] for p in sent if p["ParameterKey"] not in declared] == []


# ------------------------------------------------------------------ the deadline


def test_template_timing_is_read_from_the_service_template():
    # Given the service template
    template = load_template(SERVICE_TEMPLATE)
    timing = template_timing(template)
    # Then the target group's health check and draining are the template's; the grace period is
    # the ModelLoadSeconds parameter (its Default, or the settings' value when given)
    assert timing == Timing(
        interval=10,
        healthy_threshold=2,
        unhealthy_threshold=3,
        deregistration_delay=10,
        grace=600,
        maximum_percent=200,
        minimum_healthy_percent=100,
        circuit_breaker=True,
    )
    assert template_timing(template, model_load_seconds=900).grace == 900


TEMPLATE_TIMING = Timing(
    interval=10,
    healthy_threshold=2,
    unhealthy_threshold=3,
    deregistration_delay=10,
    grace=600,
    maximum_percent=200,
    circuit_breaker=True,
)


def test_derived_deadline_is_the_longer_of_a_good_rollout_and_a_rollback_plus_margin():
    # Given the template's timing (grace = the default 600 s model load) and a rolling rollout
    rolling = Rollout()
    # When the deadline is derived for 3 tasks
    deadline = rollout_deadline_seconds(rolling, TEMPLATE_TIMING, desired=3)
    # Then a good version: grace + interval x healthy + alarm window (2 x 60) + draining = 750 s
    good = 600 + 10 * 2 + 120 + 10
    # ... a version that hangs: the circuit breaker (3 failed tasks, one batch of 3, each
    # replaced after the 600 s grace) beats the unhealthy-targets alarm; + draining = 610 s
    assert circuit_breaker_seconds(TEMPLATE_TIMING, 3) == 600
    assert deadline == max(good, 600 + 10) + DEFAULT_MARGIN_SECONDS


def test_canary_deadline_includes_both_bake_times():
    # Given a canary baking 10 + 10 minutes
    canary = Rollout(strategy="canary", canary_bake_minutes=10, bake_minutes=10)
    # Then its deadline is the good path with both bakes: grace + 2 checks + 20 min + alarm window + draining
    assert rollout_deadline_seconds(canary, TEMPLATE_TIMING, 3) == (
        600 + 20 + 20 * 60 + 120 + 10 + DEFAULT_MARGIN_SECONDS
    )


def test_deadline_covers_the_slowest_breaker_over_the_scaling_range():
    # Given a rolling rollout that may start at any count from 1 to 6 tasks
    rolling = Rollout(model_load_seconds=60)
    timing = Timing(
        interval=10, healthy_threshold=2, unhealthy_threshold=3, deregistration_delay=10, grace=60, circuit_breaker=True
    )
    # Then the breaker's worst case is 1 task: 3 failures needed, one task at a time (3 x 60 s) ...
    assert worst_circuit_breaker_seconds(timing, range(1, 7)) == 3 * 60 == circuit_breaker_seconds(timing, 1)
    assert circuit_breaker_seconds(timing, 6) == 60
    # ... and the deadline for the range is at least the one for its worst count
    assert rollout_deadline_seconds(rolling, timing, range(1, 7)) == rollout_deadline_seconds(rolling, timing, 1)
    assert rollout_deadline_seconds(rolling, timing, range(1, 7)) >= rollout_deadline_seconds(rolling, timing, 6)


@pytest.mark.parametrize("load_seconds", [0, 60, 600, 900, 3600])
@pytest.mark.parametrize("period", [10, 60, 300])
def test_a_good_model_loading_for_its_whole_load_time_never_fires_the_unhealthy_alarm(load_seconds, period):
    # Given a model that loads for exactly model_load_seconds, then passes 2 checks of 10 s
    rollout = Rollout(model_load_seconds=load_seconds, alarms={"period_seconds": period})
    timing = Timing(interval=10, healthy_threshold=2, unhealthy_threshold=3, grace=load_seconds)
    unhealthy_run = load_seconds + 2 * 10
    # When the alarm's periods are derived
    periods = unhealthy_alarm_periods(rollout, timing)
    # Then the most periods that run can breach (partial periods at both ends) stay below them
    assert math.ceil(unhealthy_run / period) + 1 < periods
    # ... and the longest good load the settings allow is the configured one
    assert longest_good_load_seconds(rollout, timing) == load_seconds


def test_a_version_that_cannot_start_is_rolled_back_within_five_minutes_for_the_shipped_prod_settings():
    # Given prod's settings and a model whose server exits 60 s after it starts (cannot load)
    prod = load_environment(SHIPPED, ServiceSettings, "prod").settings
    timing = template_timing(load_template(SERVICE_TEMPLATE), prod.rollout.model_load_seconds)
    # Then the start-up failure alarm rolls it back within 5 minutes, whatever the model load time
    assert startup_failure_rollback_seconds(timing, failure_after_seconds=60) <= 5 * 60
    assert prod.rollout.model_load_seconds >= 10 * 60


def test_explicit_deadline_wins():
    assert rollout_deadline_seconds(Rollout(deadline_seconds=900), Timing(), desired=50) == 900
