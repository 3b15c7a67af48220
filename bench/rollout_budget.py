"""Row 4. Rollout budget: the rollout time the ecs-service template's settings imply, next to the
same figure with AWS's defaults. Computed, not measured: moto does not run a rollout.

The settings are read from infra/ecs-service/template.yaml (the primary target group's health
check and deregistration delay, the service's deployment configuration and health check grace
period); a setting the template leaves out takes AWS's default. The desired count and the
rollout block are the prod environment's (infra/ecs-service/management-scripts/service-settings.yml).

AWS defaults (ALB target group; ECS service), from AWS documentation:
health check every 30 s, 5 passes to turn healthy, 2 failures to turn unhealthy; deregistration
delay 300 s; maximum 200 %, minimum healthy 100 %; health check grace period 0 s; circuit
breaker off (for the bad-version line it is assumed on, else there is nothing to compare).

The critical path of one rollout, with MaximumPercent 200 / MinimumHealthyPercent 100 (both
configurations): all new tasks start at once (one batch), old tasks stop once the new ones are
healthy. Time to start a task (placement, image pull, model download) is the same for both and
is left out, as is the container's stop timeout.

  good version, ready at its first check:
      T = interval (the first check of a newly registered target comes within one interval, and
          one pass makes it healthy: ECS developer guide, "Optimize load balancer health check
          parameters") + deregistration delay (old tasks drain before they stop)
  good version, still loading at its first check (a failed check; it must then pass
  HealthyThresholdCount checks in a row):
      T = interval × healthy threshold + deregistration delay
  bad version, until the circuit breaker rolls back:
      F = failed tasks that trip the breaker = min(200, max(3, ceil(0.5 × desired)))
      batch = tasks started at once = desired × (MaximumPercent − 100) / 100
      per task: ECS stops a task that never turns healthy after max(grace period,
                unhealthy threshold × interval)
      T = ceil(F / batch) × max(grace, unhealthy threshold × interval)

The canary path (prod's settings: rollout.strategy canary), next to rolling with the same
template:
  good version, until the old tasks stop:
      T = interval × healthy threshold + canary bake + deployment bake + draining
  what the bake time buys, for a version that turns healthy and then fails its requests
  (only the deployment alarms can catch it): the share of production traffic that meets it
  before the first alarm can fire (period × evaluation periods), in traffic-seconds
  (100 % of the traffic for one second = 1):
      rolling: 100 % × window        canary: canary percent × window
  (a canary whose bake is shorter than the window would move all traffic before the alarm:
   the row says so)
  the update's deadline (RolloutDeadlineSeconds, aurelius.rollout): what deploy-service.py
  sends for prod, against the same formula for rolling.
The template is read with aurelius.rollout (the deploy script's own reader).
"""

from __future__ import annotations

import math

from aurelius.rollout import AWS_DEFAULTS, Timing, load_template, rollout_deadline_seconds, template_timing
from aurelius.settings import Rollout, ServiceSettings, load_environment
from bench import REPO, Row, ratio

TEMPLATE = REPO / "infra/ecs-service/template.yaml"
SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"

Settings = Timing  # the name the rows below were written with


def template_settings() -> Settings:
    return template_timing(load_template(TEMPLATE))


def prod_settings() -> ServiceSettings:
    return load_environment(SETTINGS, ServiceSettings, "prod").settings


def desired_count(environment: str = "prod") -> int:
    return load_environment(SETTINGS, ServiceSettings, environment).settings.desired_count


def canary_good(s: Settings, rollout: Rollout) -> int:
    return (
        s.interval * s.healthy_threshold
        + 60 * (rollout.canary_bake_minutes + rollout.bake_minutes)
        + s.deregistration_delay
    )


def exposure(rollout: Rollout) -> tuple[float, float, int]:
    """(rolling, canary) traffic-seconds a healthy-but-failing version serves before the first
    alarm can fire, and that window in seconds."""
    window = rollout.alarms.period_seconds * rollout.alarms.evaluation_periods
    canary_share = rollout.canary_percent / 100 if 60 * rollout.canary_bake_minutes >= window else 1.0
    return 1.0 * window, canary_share * window, window


def good_ready(s: Settings) -> int:
    return s.interval + s.deregistration_delay


def good_late(s: Settings) -> int:
    return s.interval * s.healthy_threshold + s.deregistration_delay


def bad_until_rollback(s: Settings, desired: int) -> tuple[int, int, int]:
    """(seconds, failed tasks to trip the breaker, batches)."""
    trip = min(200, max(3, math.ceil(0.5 * desired)))
    batch = max(1, desired * (s.maximum_percent - 100) // 100)
    batches = math.ceil(trip / batch)
    return batches * max(s.grace, s.unhealthy_threshold * s.interval), trip, batches


def run(**_) -> tuple[list[Row], dict]:
    ours, aws = template_settings(), AWS_DEFAULTS
    prod = prod_settings()
    canary = prod.rollout
    desired = prod.desired_count
    rolling = canary.model_copy(update={"strategy": "rolling"})
    exposed_rolling, exposed_canary, window = exposure(canary)
    deadline_canary = rollout_deadline_seconds(canary, ours, desired)
    deadline_rolling = rollout_deadline_seconds(rolling, ours, desired)
    bad_ours, trip, batches = bad_until_rollback(ours, desired)
    bad_aws, _, _ = bad_until_rollback(aws, desired)
    rows = [
        Row(
            "4",
            "rollout budget, good version ready at its first health check: interval + draining (+ task start, same for both)",
            f"{good_ready(ours)} s ({ours.interval} + {ours.deregistration_delay})",
            f"{good_ready(aws)} s ({aws.interval} + {aws.deregistration_delay}), AWS defaults",
            ratio(good_ready(ours), good_ready(aws)),
            "one batch: MaximumPercent 200 / MinimumHealthyPercent 100 in both",
        ),
        Row(
            "4",
            "rollout budget, good version still loading at its first check: interval × healthy threshold + draining",
            f"{good_late(ours)} s ({ours.interval} × {ours.healthy_threshold} + {ours.deregistration_delay})",
            f"{good_late(aws)} s ({aws.interval} × {aws.healthy_threshold} + {aws.deregistration_delay}), AWS defaults",
            ratio(good_late(ours), good_late(aws)),
            "",
        ),
        Row(
            "4",
            f"bad version until the circuit breaker rolls back (desired count {desired}, prod settings)",
            f"{bad_ours} s ({batches} × max(grace {ours.grace}, {ours.unhealthy_threshold} × {ours.interval}))",
            f"{bad_aws} s ({batches} × max(grace {aws.grace}, {aws.unhealthy_threshold} × {aws.interval})), AWS defaults with the breaker on",
            ratio(bad_ours, bad_aws),
            f"{trip} failed tasks trip the breaker; AWS's default has the breaker off: no automatic rollback at all. "
            f"The template's {ours.grace} s grace (model download) is what a faster failure would trade away",
        ),
        Row(
            "4",
            "canary path (prod settings), good version until the old tasks stop: interval × healthy threshold + canary bake + bake + draining",
            f"{canary_good(ours, canary)} s ({ours.interval} × {ours.healthy_threshold} + {canary.canary_bake_minutes} min"
            f" + {canary.bake_minutes} min + {ours.deregistration_delay})",
            f"{good_late(ours)} s, rolling with the same template",
            ratio(canary_good(ours, canary), good_late(ours)),
            "what the bake time costs: the rollout holds the stack this much longer (newer models wait)",
        ),
        Row(
            "4",
            f"canary path, what it protects: traffic a healthy-but-failing version serves before the first alarm can fire"
            f" ({canary.alarms.period_seconds} s × {canary.alarms.evaluation_periods})",
            f"{exposed_canary:g} traffic-seconds ({canary.canary_percent:g} % × {window} s)",
            f"{exposed_rolling:g} traffic-seconds (100 % × {window} s), rolling",
            ratio(exposed_canary, exposed_rolling),
            "the error-rate and 5xx alarms then roll the deployment back (DeploymentConfiguration.Alarms); "
            "the circuit breaker cannot see a task that is healthy",
        ),
        Row(
            "4",
            "rollout deadline sent as RolloutDeadlineSeconds (prod, canary): healthy + bakes + alarm window + draining + breaker + margin",
            f"{deadline_canary} s",
            f"{deadline_rolling} s, the same settings rolling",
            ratio(deadline_canary, deadline_rolling),
            "past it the redeployer cancels an update it started; a rollback that ends by itself fits inside it",
        ),
    ]
    return rows, {
        "template": ours.__dict__,
        "aws_defaults": aws.__dict__,
        "desired_count": desired,
        "prod_rollout": canary.model_dump(),
        "deadline_seconds": {"canary": deadline_canary, "rolling": deadline_rolling},
    }
