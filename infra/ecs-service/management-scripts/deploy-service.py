#!/usr/bin/env python3
"""Create or update the model service stack (ALB, task definition, ECS service) of one environment.

Usage: python infra/ecs-service/management-scripts/deploy-service.py --environment ENV
           [--settings FILE] [--dry-run] [--model-version-id VERSION] [--role-arn ARN]
Exit 0 done, 2 bad settings or arguments (nothing sent to AWS), 1 AWS-side failure.

The service runs in an existing cluster, found by the name in the settings. Who moves the
model: the redeployer. This script keeps the deployed ModelS3Uri / ModelVersionId
(UsePreviousValue) unless --model-version-id names one; on the first create it takes the
model's current S3 version and fails clearly when there is no model yet.

CloudFormation service role: the trigger stack's role (found by name with iam:GetRole) or
--role-arn. Once the redeployer has updated the stack with that role, CloudFormation uses it
for every later operation anyway; deploying with it from the start makes a role that lacks a
permission fail at the first human deploy, not at the first automatic redeploy.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from aurelius.core.decision import DEADLINE_PARAMETER, NONCE_PARAMETER
from aurelius.rollout import load_template, rollout_deadline_seconds, template_timing, unhealthy_alarm_periods
from aurelius.scripts.management import (
    ScriptContext,
    UsageError,
    add_model_version_argument,
    pinned_model_parameters,
    run_management_script,
)
from aurelius.scripts.stack_deploy import StackSpec, describe_stack, keep_parameter, parameter
from aurelius.settings import Environment, ServiceSettings, SettingsError, model_loading_values

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "template.yaml"
SETTINGS = HERE / "service-settings.yml"


ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")


def name_parameters(env: Environment[ServiceSettings]) -> list[dict[str, Any]]:
    """The parameters that come from aurelius naming. The trigger stack's CloudFormation
    service role is scoped to exactly these names (template.yaml, CloudFormationServiceRole)."""
    names = env.names
    return [
        parameter("ClusterName", env.settings.cluster_name),
        parameter("ServiceName", names["svc"]),
        parameter("TaskFamily", names["task"]),
        parameter("LoadBalancerName", names["alb"]),
        parameter("TargetGroupName", names["tg"]),
        parameter("LogGroupName", names["logs"]),
        parameter("TaskRoleName", names["task-role"]),
        parameter("TaskExecutionRoleName", names["exec-role"]),
        parameter("AlternateTargetGroupName", names["tg-alt"]),
        parameter("LoadBalancerRoleName", names["ecs-lb-role"]),
        parameter("ErrorRateAlarmName", names["alarm-errors"]),
        parameter("Target5xxAlarmName", names["alarm-5xx"]),
        parameter("UnhealthyHostsAlarmName", names["alarm-unhealthy"]),
        parameter("StartupFailuresAlarmName", names["alarm-startup"]),
    ]


def _json(value: Any) -> str:
    """Compact JSON, whole numbers without ".0" (the settings hold them as floats)."""

    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return [plain(item) for item in v]
        return int(v) if isinstance(v, float) and v.is_integer() else v

    return json.dumps(plain(value), separators=(",", ":"))


def smoke_test_parameters(settings: ServiceSettings) -> list[dict[str, Any]]:
    """SmokeTestInstances / Expected / Tolerance: JSON for the server's SMOKE_TEST_* variables,
    empty when not configured (the template then leaves the variable unset)."""
    smoke = settings.smoke_test
    return [
        parameter("SmokeTestInstances", _json(smoke.instances) if smoke else ""),
        parameter("SmokeTestExpected", _json(smoke.expected) if smoke and smoke.expected is not None else ""),
        parameter("SmokeTestTolerance", repr(smoke.tolerance) if smoke and smoke.tolerance is not None else ""),
    ]


def rollout_parameters(settings: ServiceSettings) -> list[dict[str, Any]]:
    """Strategy, canary and bake times, alarm thresholds and the rollout deadline.

    Sent explicitly on every deploy, like every other settings-derived parameter; the
    redeployer's UpdateStack keeps them all (UsePreviousValue).
    """
    rollout, alarms = settings.rollout, settings.rollout.alarms
    timing = template_timing(load_template(TEMPLATE), rollout.model_load_seconds)
    # Any count scaling may leave the service at when a deployment starts (the circuit
    # breaker's threshold follows the desired count of that moment).
    counts = range(settings.scaling.min, settings.scaling.max + 1) if settings.scaling else settings.desired_count
    deadline = rollout_deadline_seconds(rollout, timing, counts)
    return [
        parameter("RolloutStrategy", rollout.strategy),
        parameter("CanaryPercent", f"{rollout.canary_percent:g}"),
        parameter("CanaryBakeTimeInMinutes", rollout.canary_bake_minutes),
        parameter("BakeTimeInMinutes", rollout.bake_minutes),
        parameter("ErrorRateThresholdPercent", f"{alarms.error_rate_percent:g}"),
        parameter("Target5xxThreshold", alarms.target_5xx_count),
        parameter("UnhealthyHostsThreshold", alarms.unhealthy_hosts),
        parameter("AlarmPeriodSeconds", alarms.period_seconds),
        parameter("AlarmEvaluationPeriods", alarms.evaluation_periods),
        parameter("ModelLoadSeconds", rollout.model_load_seconds),
        parameter("UnhealthyHostsEvaluationPeriods", unhealthy_alarm_periods(rollout, timing)),
        parameter(DEADLINE_PARAMETER, deadline),
    ]


def scaling_parameters(settings: ServiceSettings) -> list[dict[str, Any]]:
    """DesiredCount and the Scaling* parameters.

    Scaling off: DesiredCount is the settings' desired_count and ScalingMaxCapacity 0. Scaling
    on: the template leaves DesiredCount out of the service (so no deploy resets the count
    Application Auto Scaling set); the DesiredCount parameter then only records scaling.min.
    """
    scaling = settings.scaling
    if scaling is None:
        return [
            parameter("DesiredCount", settings.desired_count),
            parameter("ScalingMinCapacity", 1),
            parameter("ScalingMaxCapacity", 0),
            parameter("ScalingRequestsPerTarget", ""),
            parameter("ScalingCpuPercent", ""),
            parameter("ScaleInCooldownSeconds", 300),
            parameter("ScaleOutCooldownSeconds", 60),
        ]
    return [
        parameter("DesiredCount", scaling.min),
        parameter("ScalingMinCapacity", scaling.min),
        parameter("ScalingMaxCapacity", scaling.max),
        parameter("ScalingRequestsPerTarget", scaling.requests_per_target or ""),
        parameter("ScalingCpuPercent", f"{scaling.cpu_percent:g}" if scaling.cpu_percent is not None else ""),
        parameter("ScaleInCooldownSeconds", scaling.scale_in_cooldown),
        parameter("ScaleOutCooldownSeconds", scaling.scale_out_cooldown),
    ]


def service_role_arn(ctx: ScriptContext[ServiceSettings]) -> str | None:
    """The CloudFormation service role to deploy with: --role-arn, else the trigger stack's
    role found by its name, else None (CloudFormation then uses the caller's credentials, or
    the role already associated with the stack)."""
    if ctx.args.role_arn:
        if not ROLE_ARN.match(ctx.args.role_arn):
            raise UsageError(
                f"--role-arn {ctx.args.role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            )
        return ctx.args.role_arn
    name = ctx.env.names["cfn-role"]
    try:
        return ctx.client("iam").get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        why = (
            "does not exist (deploy the trigger stack first)"
            if code == "NoSuchEntity"
            else f"could not be read ({code})"
        )
        print(
            f"note: CloudFormation service role {name} {why}; deploying with your own credentials. "
            "Pass --role-arn ARN to use a role anyway."
        )
        return None


def build(ctx: ScriptContext[ServiceSettings]) -> StackSpec:
    settings = ctx.env.settings
    try:
        # Reads the trust files: a bad one stops before any AWS call.
        model = [parameter(name, value) for name, value in model_loading_values(ctx.env).items()]
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    role_arn = service_role_arn(ctx)  # first: a bad --role-arn stops before any other call
    deployed = describe_stack(ctx.client("cloudformation"), ctx.env.stack_name)
    return ctx.stack_spec(
        TEMPLATE,
        [
            *name_parameters(ctx.env),
            *ctx.service_network_parameters(),
            parameter("ContainerImage", settings.image),
            parameter("ContainerPort", settings.container_port),
            parameter("TaskCpu", settings.cpu),
            parameter("TaskMemory", settings.memory),
            *scaling_parameters(settings),
            parameter("AllowedIngressCidr", settings.allowed_ingress_cidr),
            *smoke_test_parameters(settings),
            *model,
            *rollout_parameters(settings),
            *pinned_model_parameters(ctx, settings.model, deployed),
            # Only the redeployer's refresh moves the nonce (aurelius.core.reconcile).
            keep_parameter(NONCE_PARAMETER) if deployed else parameter(NONCE_PARAMETER, "initial"),
        ],
        what="model service",
        # The template names its IAM roles (TaskRoleName, TaskExecutionRoleName).
        capabilities=("CAPABILITY_NAMED_IAM",),
        role_arn=role_arn,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_version_argument(parser)
    parser.add_argument(
        "--role-arn",
        help="CloudFormation service role to deploy with (default: the trigger stack's role, found by name, if it exists)",
    )


def main(argv: list[str] | None = None) -> int:
    return run_management_script(
        argv,
        description="Create or update the aurelius model service stack in an existing cluster.",
        default_settings=SETTINGS,
        model=ServiceSettings,
        build=build,
        add_arguments=add_arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
