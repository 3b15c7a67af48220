"""Row 4, scaling (issue 20): computed from the prod settings and the service template; moto
runs no tasks and no Application Auto Scaling.

Time from a traffic step to added capacity (requests-per-task target tracking):
    metric period (ALB RequestCount, 60 s) + the scale-out alarm target tracking creates
    (3 datapoints of 60 s: Application Auto Scaling user guide, "Target tracking scaling
    policies"; re-check on a real account) + task start (placement, image pull: 60 s
    assumed) + the model's load + healthy threshold × interval.
    Shown for a model that loads in 30 s and for prod's longest allowed load; an instance the
    cluster must add first (capacity provider managed scaling) comes on top.

The task count a model deploy leaves behind when scaling had moved the service to N: read from
the template: with scaling on, the service resource has no DesiredCount (omitted from the
update, AWS::ECS::Service), so the count stays N; a template that sends DesiredCount would set
it back to the settings' count. tests/integration/test_scaling_keeps_the_count.py shows both on
moto.
"""

from __future__ import annotations

from typing import Any

from aurelius.rollout import TASK_START_SECONDS, Timing, load_template
from aurelius.settings import ServiceSettings
from bench import REPO, Row, ratio

TEMPLATE = REPO / "infra/ecs-service/template.yaml"
METRIC_PERIOD_SECONDS = 60
SCALE_OUT_ALARM_SECONDS = 3 * 60
FAST_LOAD_SECONDS = 30


def step_to_capacity_seconds(timing: Timing, load_seconds: int) -> int:
    return (
        METRIC_PERIOD_SECONDS
        + SCALE_OUT_ALARM_SECONDS
        + TASK_START_SECONDS
        + load_seconds
        + timing.healthy_threshold * timing.interval
    )


def count_after_deploy(template: dict[str, Any], scaled_to: int, settings_count: int) -> int:
    """The desired count a stack update leaves: the template's Service DesiredCount with scaling
    on (HasScaling true) decides between "unchanged" and the settings' count."""
    sent = template["Resources"]["Service"]["Properties"].get("DesiredCount")
    # !If [HasScaling, !Ref AWS::NoValue, !Ref DesiredCount] reads as that list here.
    omitted_with_scaling = isinstance(sent, list) and sent[0] == "HasScaling" and sent[1] == "AWS::NoValue"
    return scaled_to if omitted_with_scaling else settings_count


def rows(prod: ServiceSettings, timing: Timing) -> tuple[list[Row], dict]:
    scaling = prod.scaling
    if scaling is None:
        return [], {}
    fast = step_to_capacity_seconds(timing, FAST_LOAD_SECONDS)
    slow = step_to_capacity_seconds(timing, prod.rollout.model_load_seconds)
    scaled_to = scaling.max - 1
    left = count_after_deploy(load_template(TEMPLATE), scaled_to, scaling.min)
    return [
        Row(
            "4",
            f"scaling: traffic step to added capacity (prod, {scaling.requests_per_target} requests per task per minute)",
            f"{fast} s with a {FAST_LOAD_SECONDS} s model load (period 60 + alarm 3 × 60 + task start "
            f"{TASK_START_SECONDS} + load + {timing.healthy_threshold} × {timing.interval})",
            f"{slow} s with prod's longest load ({prod.rollout.model_load_seconds} s)",
            ratio(fast, slow),
            "a new instance first (cluster at its capacity) adds its boot time; scale_out_cooldown "
            f"{scaling.scale_out_cooldown} s between steps",
        ),
        Row(
            "4",
            f"scaling: task count a model deploy leaves behind, service scaled out to {scaled_to} (prod {scaling.min}-{scaling.max})",
            f"{left} tasks (the service resource has no DesiredCount with scaling on)",
            f"{scaling.min} tasks, a template that sends DesiredCount (scaling bolted on)",
            ratio(left, scaling.min),
            "must equal the scaled count; shown on moto by tests/integration/test_scaling_keeps_the_count.py",
        ),
    ], {"step_to_capacity_seconds": {"fast_load": fast, "longest_load": slow}, "count_after_deploy": left}
