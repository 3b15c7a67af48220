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
  a good model that loads slowly (issue 18): ECS ignores health checks for the grace period
  (= rollout.model_load_seconds) and the unhealthy-targets alarm's window is longer than
  that; the longest load that deploys is aurelius.rollout.longest_good_load_seconds.
  a version that cannot start (its server exits: cannot load, fails its smoke test): the
  StartupFailures alarm, rolling and canary alike (aurelius.rollout.startup_failure_rollback_seconds),
  next to the circuit breaker alone (which waits for the grace period per failed task, and
  which ECS documents for rolling and blue/green only).
  a version that hangs (never healthy, never exits): the unhealthy-targets alarm after its
  window, or for rolling the circuit breaker, whichever comes first.

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

from aurelius.rollout import (
    AWS_DEFAULTS,
    Timing,
    circuit_breaker_seconds,
    hung_version_rollback_seconds,
    load_template,
    longest_good_load_seconds,
    rollout_deadline_seconds,
    startup_failure_rollback_seconds,
    template_timing,
    worst_circuit_breaker_seconds,
)
from aurelius.settings import Rollout, ServiceSettings, load_environment
from bench import REPO, Row, ratio, scaling_budget

TEMPLATE = REPO / "infra/ecs-service/template.yaml"
SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"

Settings = Timing  # the name the rows below were written with


# A model that cannot load fails this long after its server starts (download, then unpickling
# or the smoke test raises): the bench's assumption for the "cannot start" rows.
FAILURE_AFTER_SECONDS = 60
# Before issue 18: 60 s grace, then ECS acted on failed health checks; the unhealthy-targets
# alarm fired after 2 x 60 s. A load longer than about this was rolled back.
LONGEST_LOAD_BEFORE_SECONDS = 60 + 2 * 60


def template_settings(model_load_seconds: int | None = None) -> Settings:
    return template_timing(load_template(TEMPLATE), model_load_seconds)


def prod_settings() -> ServiceSettings:
    return load_environment(SETTINGS, ServiceSettings, "prod").settings


def desired_count(environment: str = "prod") -> int:
    return load_environment(SETTINGS, ServiceSettings, environment).settings.starting_count


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


def run(**_) -> tuple[list[Row], dict]:
    prod = prod_settings()
    ours, aws = template_settings(prod.rollout.model_load_seconds), AWS_DEFAULTS
    canary = prod.rollout
    # The desired count when a deployment starts: anything scaling may have left (issue 20).
    counts = (
        range(prod.scaling.min, prod.scaling.max + 1)
        if prod.scaling
        else range(prod.desired_count, prod.desired_count + 1)
    )
    rolling = canary.model_copy(update={"strategy": "rolling"})
    exposed_rolling, exposed_canary, window = exposure(canary)
    deadline_canary = rollout_deadline_seconds(canary, ours, counts)
    deadline_rolling = rollout_deadline_seconds(rolling, ours, counts)
    cannot_start = startup_failure_rollback_seconds(ours, FAILURE_AFTER_SECONDS)
    breaker_only = worst_circuit_breaker_seconds(ours, counts)
    longest_load = longest_good_load_seconds(canary, ours)
    hung_canary = hung_version_rollback_seconds(canary, ours, counts)
    hung_rolling = hung_version_rollback_seconds(rolling, ours, counts)
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
            "longest model load that deploys without a rollback (prod settings, rolling and canary); goal ≥ 600 s",
            f"{longest_load} s (rollout.model_load_seconds: health check grace, unhealthy-targets alarm window)",
            f"{LONGEST_LOAD_BEFORE_SECONDS} s before issue 18 (60 s grace, alarm after 2 × 60 s)",
            ratio(longest_load, LONGEST_LOAD_BEFORE_SECONDS),
            "a good model answers 503 while it loads; ECS ignores the load balancer's checks for the grace period",
        ),
        Row(
            "4",
            f"version that cannot start (server exits {FAILURE_AFTER_SECONDS} s after start) until rolled back, "
            "rolling and canary alike; goal ≤ 300 s",
            f"{cannot_start} s (task start 60 + failure {FAILURE_AFTER_SECONDS} + StartupFailures alarm period 60 "
            f"+ ECS reading the alarm 60 + draining {ours.deregistration_delay})",
            f"{breaker_only} s, the circuit breaker alone (rolling only; worst count {counts[0]}, "
            f"grace {ours.grace} s); canary has no breaker",
            ratio(cannot_start, breaker_only),
            "ECS's alarm polling interval is not published: 60 s is an assumption a real account must confirm",
        ),
        Row(
            "4",
            "version that never answers healthy and never exits (a hang), until rolled back (prod)",
            f"{hung_canary} s canary (unhealthy-targets alarm after its window)",
            f"{hung_rolling} s rolling (that alarm or the circuit breaker, first)",
            ratio(hung_canary, hung_rolling),
            "the one case the model's load time delays: a hang looks like a slow load until the window ends",
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
            "rollout deadline sent as RolloutDeadlineSeconds (prod, canary): the longer of a good rollout and a self-rollback, + margin",
            f"{deadline_canary} s",
            f"{deadline_rolling} s, the same settings rolling",
            ratio(deadline_canary, deadline_rolling),
            "past it the redeployer cancels an update it started; a rollback that ends by itself fits inside it",
        ),
    ]
    scaling_rows, scaling_data = scaling_budget.rows(prod, ours)
    return rows + scaling_rows, {
        "template": ours.__dict__,
        "aws_defaults": aws.__dict__,
        "desired_counts": [counts[0], counts[-1]],
        "prod_rollout": canary.model_dump(),
        "deadline_seconds": {"canary": deadline_canary, "rolling": deadline_rolling},
        "longest_good_load_seconds": longest_load,
        "cannot_start_rollback_seconds": cannot_start,
        "hung_rollback_seconds": {"canary": hung_canary, "rolling": hung_rolling},
        "breaker_only_seconds": breaker_only,
        "breaker_one_task_seconds": circuit_breaker_seconds(ours, 1),
        **scaling_data,
    }
