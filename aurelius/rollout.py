"""How long one rollout of the service stack takes, and the deadline the redeployer gives it.

The timing settings live where AWS reads them: the target group's health check and draining in
infra/ecs-service/template.yaml, the deployment strategy, bake times and alarms in the service
settings. ``template_timing`` reads the first, ``rollout_deadline_seconds`` adds the second.
Shared by deploy-service.py (the ``RolloutDeadlineSeconds`` stack parameter) and ``make bench``.

The deadline is the longest a healthy rollout, or one that ECS rolls back by itself, can take,
plus a margin; past it the redeployer cancels an update it started (a stuck rollout must not
hold the stack, and so every newer model, for as long as CloudFormation would wait).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aurelius.settings import Rollout

# Start-up time a rollout cannot see from its settings: placing the task, pulling the image,
# downloading and unpickling the model. Generous on purpose: a deadline too short cancels good
# rollouts, one too long only delays the next model.
DEFAULT_MARGIN_SECONDS = 600

# Placement, image pull and network interface of a new task, before its process starts: no
# setting holds it. Used for the time a version that cannot start takes to roll back.
TASK_START_SECONDS = 60
# The StartupFailures alarm (infra/ecs-service/template.yaml): one 60 s period (metric filter
# metrics are standard resolution), then ECS has to notice the alarm. AWS does not publish how
# often ECS reads deployment alarms; one more period is budgeted for it.
STARTUP_ALARM_SECONDS = 60 + 60


@dataclass(frozen=True)
class Timing:
    """The template's timing settings (ALB target group; ECS service), AWS defaults where unset."""

    interval: int = 30
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    deregistration_delay: int = 300
    grace: int = 0
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    circuit_breaker: bool = False


AWS_DEFAULTS = Timing()


class _TemplateLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short tags (!Ref, !If, ...) as plain values."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TemplateLoader.add_multi_constructor("!", _untagged)


def load_template(path: Path) -> dict[str, Any]:
    # A SafeLoader subclass: safe_load's loader plus the tags above.
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id].get("Properties", {})


def _seconds(value: Any, default: int) -> int:
    """A template number; a ``!Ref`` (read as the parameter's name) counts as ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def template_timing(template: dict[str, Any], model_load_seconds: int | None = None) -> Timing:
    """Timing of the service template's primary target group and ECS service.

    The grace period is the ``ModelLoadSeconds`` parameter: ``model_load_seconds`` (the
    settings' ``rollout.model_load_seconds``), else the parameter's Default.
    """
    group = _properties(template, "TargetGroup")
    service = _properties(template, "Service")
    attributes = {a["Key"]: a["Value"] for a in group.get("TargetGroupAttributes", [])}
    deployment = service.get("DeploymentConfiguration", {})
    d = AWS_DEFAULTS
    if model_load_seconds is None:
        model_load_seconds = int(template.get("Parameters", {}).get("ModelLoadSeconds", {}).get("Default", d.grace))
    breaker = deployment.get("DeploymentCircuitBreaker", {})
    # rolling: {Enable, Rollback}; the template's !If [IsCanary, NoValue, {...}] reads as a list.
    if isinstance(breaker, list):
        breaker = next((b for b in breaker if isinstance(b, dict)), {})
    return Timing(
        interval=int(group.get("HealthCheckIntervalSeconds", d.interval)),
        healthy_threshold=int(group.get("HealthyThresholdCount", d.healthy_threshold)),
        unhealthy_threshold=int(group.get("UnhealthyThresholdCount", d.unhealthy_threshold)),
        deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", d.deregistration_delay)),
        grace=_seconds(service.get("HealthCheckGracePeriodSeconds", d.grace), model_load_seconds),
        maximum_percent=int(deployment.get("MaximumPercent", d.maximum_percent)),
        minimum_healthy_percent=int(deployment.get("MinimumHealthyPercent", d.minimum_healthy_percent)),
        circuit_breaker=bool(breaker.get("Enable", d.circuit_breaker)),
    )


def turn_healthy_seconds(t: Timing) -> int:
    """A new task still loading at its first check: grace, then healthy-threshold passes in a row."""
    return t.grace + t.interval * t.healthy_threshold


def circuit_breaker_seconds(t: Timing, desired: int) -> int:
    """A version whose tasks never turn healthy, until the circuit breaker rolls it back.

    The breaker trips after 0.5 x desired failed tasks, at least 3, at most 200
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html);
    "desired" is the service's desired count when the deployment runs. MaximumPercent sets how
    many start at once; ECS replaces a task that never turns healthy after max(grace,
    unhealthy threshold x interval).
    """
    trip = min(200, max(3, math.ceil(0.5 * desired)))
    batch = max(1, desired * (t.maximum_percent - 100) // 100)
    return math.ceil(trip / batch) * max(t.grace, t.unhealthy_threshold * t.interval)


def _counts(desired: int | Iterable[int]) -> list[int]:
    return [desired] if isinstance(desired, int) else sorted(set(desired))


def worst_circuit_breaker_seconds(t: Timing, desired: int | Iterable[int]) -> int:
    """``circuit_breaker_seconds`` for the worst desired count a deployment may start with
    (with scaling, any count from scaling.min to scaling.max: few tasks trip slowest)."""
    return max(circuit_breaker_seconds(t, count) for count in _counts(desired))


def unhealthy_alarm_periods(rollout: Rollout, t: Timing) -> int:
    """EvaluationPeriods (= DatapointsToAlarm) of the unhealthy-targets alarm.

    A good model's new target is unhealthy until its model is loaded plus healthy-threshold
    passes; a run of D seconds breaches at most ceil(D / period) + 1 periods (partial periods at
    both ends). The alarm needs ``evaluation_periods`` more than that, so only a target
    unhealthy for longer than a good load fires it.
    """
    period = rollout.alarms.period_seconds
    loading = rollout.model_load_seconds + t.healthy_threshold * t.interval
    return math.ceil(loading / period) + 1 + rollout.alarms.evaluation_periods


def longest_good_load_seconds(rollout: Rollout, t: Timing) -> int:
    """The longest model load that deploys without a rollback: ECS acts on health checks after
    the grace period (= model_load_seconds), and the unhealthy-targets alarm needs a longer run."""
    period = rollout.alarms.period_seconds
    alarm_bound = (unhealthy_alarm_periods(rollout, t) - 2) * period - t.healthy_threshold * t.interval
    return min(t.grace, alarm_bound)


def startup_failure_rollback_seconds(t: Timing, failure_after_seconds: int) -> int:
    """A version whose server exits at start (cannot load, fails its smoke test) after
    ``failure_after_seconds``, until ECS has rolled it back through the StartupFailures alarm:
    task start + the failure + the alarm + draining the new tasks. Same for rolling and canary."""
    return TASK_START_SECONDS + failure_after_seconds + STARTUP_ALARM_SECONDS + t.deregistration_delay


def hung_version_rollback_seconds(rollout: Rollout, t: Timing, desired: int | Iterable[int]) -> int:
    """A version that never answers healthy and never exits: the unhealthy-targets alarm after
    its window, or (rolling) the circuit breaker, whichever comes first."""
    unhealthy_after = t.unhealthy_threshold * t.interval
    alarm = TASK_START_SECONDS + unhealthy_after + unhealthy_alarm_periods(rollout, t) * rollout.alarms.period_seconds
    if rollout.strategy == "rolling" and t.circuit_breaker:
        return min(alarm, worst_circuit_breaker_seconds(t, desired))
    return alarm


def alarm_bake_seconds(rollout: Rollout) -> int:
    """How long ECS keeps watching the deployment alarms after the rollout.

    canary: the canary bake, then the deployment bake (both set). rolling: ECS computes its bake
    time from the alarms' configuration and does not publish the formula
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html);
    we budget the time an alarm needs to fire, period x evaluation periods.
    """
    alarm_window = rollout.alarms.period_seconds * rollout.alarms.evaluation_periods
    if rollout.strategy == "canary":
        return 60 * (rollout.canary_bake_minutes + rollout.bake_minutes) + alarm_window
    return alarm_window


def rollout_deadline_seconds(
    rollout: Rollout, timing: Timing, desired: int | Iterable[int], margin: int = DEFAULT_MARGIN_SECONDS
) -> int:
    """``rollout.deadline_seconds`` if set, else the longest legitimate rollout plus ``margin``:
    a good version (turn healthy, bake under the alarms, drain the old tasks) or a version ECS
    rolls back by itself (a rollback that ends on its own is never cancelled), whichever is
    longer. ``desired``: the desired count, or every count scaling may leave the service at."""
    if rollout.deadline_seconds is not None:
        return rollout.deadline_seconds
    good = turn_healthy_seconds(timing) + alarm_bake_seconds(rollout) + timing.deregistration_delay
    rolled_back = hung_version_rollback_seconds(rollout, timing, desired) + timing.deregistration_delay
    return max(good, rolled_back) + margin
