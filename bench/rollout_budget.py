"""Row 4. Rollout budget: the rollout time the ecs-service template's settings imply, next to the
same figure with AWS's defaults. Computed, not measured: moto does not run a rollout.

The settings are read from infra/ecs-service/template.yaml with cfn-lint's YAML loader (the
target group's health check and deregistration delay, the service's deployment configuration
and health check grace period); a setting the template leaves out takes AWS's default. The
desired count is the prod environment's (infra/ecs-service/management-scripts/service-settings.yml).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml
from cfnlint.decode import cfn_yaml

from bench import REPO, Row, ratio

TEMPLATE = REPO / "infra/ecs-service/template.yaml"
SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"


@dataclass(frozen=True)
class Settings:
    interval: int = 30
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    deregistration_delay: int = 300
    grace: int = 0
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    circuit_breaker: bool = False


AWS_DEFAULTS = Settings()


def _only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (found,) = [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == resource_type]
    return found


def template_settings() -> Settings:
    template = cfn_yaml.load(str(TEMPLATE))
    group = _only(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    service = _only(template, "AWS::ECS::Service")
    attributes = {a["Key"]: a["Value"] for a in group.get("TargetGroupAttributes", [])}
    deployment = service.get("DeploymentConfiguration", {})
    d = AWS_DEFAULTS
    return Settings(
        interval=int(group.get("HealthCheckIntervalSeconds", d.interval)),
        healthy_threshold=int(group.get("HealthyThresholdCount", d.healthy_threshold)),
        unhealthy_threshold=int(group.get("UnhealthyThresholdCount", d.unhealthy_threshold)),
        deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", d.deregistration_delay)),
        grace=int(service.get("HealthCheckGracePeriodSeconds", d.grace)),
        maximum_percent=int(deployment.get("MaximumPercent", d.maximum_percent)),
        minimum_healthy_percent=int(deployment.get("MinimumHealthyPercent", d.minimum_healthy_percent)),
        circuit_breaker=bool(deployment.get("DeploymentCircuitBreaker", {}).get("Enable", d.circuit_breaker)),
    )


def desired_count(environment: str = "prod") -> int:
    return int(yaml.safe_load(SETTINGS.read_text())["environments"][environment]["desired_count"])


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
    desired = desired_count()
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
    ]
    return rows, {"template": ours.__dict__, "aws_defaults": aws.__dict__, "desired_count": desired}
