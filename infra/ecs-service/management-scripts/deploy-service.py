#!/usr/bin/env python3
"""Create or update the model service stack (ALB, task definition, ECS service) of one environment.

Usage: python infra/ecs-service/management-scripts/deploy-service.py --environment ENV
           [--settings FILE] [--dry-run] [--model-version-id VERSION]
Exit 0 done, 2 bad settings or arguments (nothing sent to AWS), 1 AWS-side failure.

The service runs in an existing cluster, found by the name in the settings. Who moves the
model: the redeployer. This script keeps the deployed ModelS3Uri / ModelVersionId
(UsePreviousValue) unless --model-version-id names one; on the first create it takes the
model's current S3 version and fails clearly when there is no model yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aurelius.management import (
    ScriptContext,
    add_model_version_argument,
    pinned_model_parameters,
    run_management_script,
)
from aurelius.settings import ServiceSettings
from aurelius.stack_deploy import StackSpec, describe_stack, keep_parameter, parameter

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "template.yaml"
SETTINGS = HERE / "service-settings.yml"


def build(ctx: ScriptContext[ServiceSettings]) -> StackSpec:
    settings, names = ctx.env.settings, ctx.env.names
    deployed = describe_stack(ctx.client("cloudformation"), ctx.env.stack_name)
    return ctx.stack_spec(
        TEMPLATE,
        [
            parameter("ClusterName", settings.cluster_name),
            parameter("ServiceName", names["svc"]),
            parameter("TaskFamily", names["task"]),
            parameter("LoadBalancerName", names["alb"]),
            parameter("TargetGroupName", names["tg"]),
            parameter("LogGroupName", names["logs"]),
            *ctx.network_parameters(),
            parameter("ContainerImage", settings.image),
            parameter("ContainerPort", settings.container_port),
            parameter("TaskCpu", settings.cpu),
            parameter("TaskMemory", settings.memory),
            parameter("DesiredCount", settings.desired_count),
            parameter("AllowedIngressCidr", settings.allowed_ingress_cidr),
            *pinned_model_parameters(ctx, settings.model, deployed),
            # Only the redeployer's refresh moves the nonce (aurelius.reconcile).
            keep_parameter("DeploymentNonce") if deployed else parameter("DeploymentNonce", "initial"),
        ],
        what="model service",
    )


def main(argv: list[str] | None = None) -> int:
    return run_management_script(
        argv,
        description="Create or update the aurelius model service stack in an existing cluster.",
        default_settings=SETTINGS,
        model=ServiceSettings,
        build=build,
        add_arguments=add_model_version_argument,
    )


if __name__ == "__main__":
    sys.exit(main())
