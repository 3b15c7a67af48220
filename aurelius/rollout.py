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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aurelius.settings import Rollout

# Start-up time a rollout cannot see from its settings: placing the task, pulling the image,
# downloading and unpickling the model. Generous on purpose: a deadline too short cancels good
# rollouts, one too long only delays the next model.
DEFAULT_MARGIN_SECONDS = 600


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


def template_timing(template: dict[str, Any]) -> Timing:
    """Timing of the service template's primary target group and ECS service."""
    group = _properties(template, "TargetGroup")
    service = _properties(template, "Service")
    attributes = {a["Key"]: a["Value"] for a in group.get("TargetGroupAttributes", [])}
    deployment = service.get("DeploymentConfiguration", {})
    d = AWS_DEFAULTS
    return Timing(
        interval=int(group.get("HealthCheckIntervalSeconds", d.interval)),
        healthy_threshold=int(group.get("HealthyThresholdCount", d.healthy_threshold)),
        unhealthy_threshold=int(group.get("UnhealthyThresholdCount", d.unhealthy_threshold)),
        deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", d.deregistration_delay)),
        grace=int(service.get("HealthCheckGracePeriodSeconds", d.grace)),
        maximum_percent=int(deployment.get("MaximumPercent", d.maximum_percent)),
        minimum_healthy_percent=int(deployment.get("MinimumHealthyPercent", d.minimum_healthy_percent)),
        circuit_breaker=bool(deployment.get("DeploymentCircuitBreaker", {}).get("Enable", d.circuit_breaker)),
    )


def turn_healthy_seconds(t: Timing) -> int:
    """A new task still loading at its first check: grace, then healthy-threshold passes in a row."""
    return t.grace + t.interval * t.healthy_threshold


def circuit_breaker_seconds(t: Timing, desired: int) -> int:
    """A version whose tasks never turn healthy, until the circuit breaker rolls it back.

    The breaker trips after 0.5 x desired failed tasks, at least 3, at most 200
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html);
    MaximumPercent sets how many start at once; ECS replaces a task that never turns healthy
    after max(grace, unhealthy threshold x interval).
    """
    trip = min(200, max(3, math.ceil(0.5 * desired)))
    batch = max(1, desired * (t.maximum_percent - 100) // 100)
    return math.ceil(trip / batch) * max(t.grace, t.unhealthy_threshold * t.interval)


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
    rollout: Rollout, timing: Timing, desired: int, margin: int = DEFAULT_MARGIN_SECONDS
) -> int:
    """``rollout.deadline_seconds`` if set, else the longest legitimate rollout plus ``margin``:
    turn healthy, bake under the alarms, drain the old tasks, and room for the circuit breaker
    to roll a bad version back by itself (a rollback that ends on its own is never cancelled)."""
    if rollout.deadline_seconds is not None:
        return rollout.deadline_seconds
    good = turn_healthy_seconds(timing) + alarm_bake_seconds(rollout) + timing.deregistration_delay
    return good + circuit_breaker_seconds(timing, desired) + margin
