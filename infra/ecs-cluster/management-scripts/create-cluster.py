#!/usr/bin/env python3
"""Create or update the ECS cluster stack of one environment (run once per environment).

Usage: python infra/ecs-cluster/management-scripts/create-cluster.py --environment ENV [--settings FILE] [--dry-run]
Exit 0 done, 2 bad settings or arguments (nothing sent to AWS), 1 AWS-side failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aurelius.scripts.management import ScriptContext, capacity_parameters, run_management_script
from aurelius.scripts.stack_deploy import StackSpec, parameter
from aurelius.settings import ClusterSettings

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "template.yaml"
SETTINGS = HERE / "service-settings.yml"


def vpc_endpoint_parameters(settings: ClusterSettings) -> list[dict[str, Any]]:
    endpoints = settings.vpc_endpoints
    if endpoints is None:
        return [
            parameter("CreateVpcEndpoints", "false"),
            parameter("EndpointRouteTableIds", ""),
            parameter("EndpointClientCidr", "10.0.0.0/8"),
        ]
    return [
        parameter("CreateVpcEndpoints", "true"),
        parameter("EndpointRouteTableIds", endpoints.route_table_ids),
        parameter("EndpointClientCidr", endpoints.client_cidr),
    ]


def build(ctx: ScriptContext[ClusterSettings]) -> StackSpec:
    settings, names = ctx.env.settings, ctx.env.names
    return ctx.stack_spec(
        TEMPLATE,
        [
            parameter("ClusterName", names["cluster"]),
            parameter("CapacityProviderName", names["cp"]),
            parameter("AutoScalingGroupName", names["asg"]),
            parameter("LaunchTemplateName", names["lt"]),
            *ctx.network_parameters(),
            parameter("InstanceType", settings.instance_type),
            *capacity_parameters(settings.capacity),
            parameter("TargetCapacityPercent", settings.target_capacity_percent),
            parameter("ImageId", settings.ami_parameter),
            *vpc_endpoint_parameters(settings),
        ],
        what="ECS cluster",
    )


def main(argv: list[str] | None = None) -> int:
    return run_management_script(
        argv,
        description="Create or update the aurelius ECS cluster stack.",
        default_settings=SETTINGS,
        model=ClusterSettings,
        build=build,
    )


if __name__ == "__main__":
    sys.exit(main())
