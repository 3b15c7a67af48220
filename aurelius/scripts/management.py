"""The shared shell of the management scripts in infra/*/management-scripts/.

Contract (docs/design.md#contracts): ``--environment ENV [--settings FILE] [--dry-run]``; exit 0 done,
2 bad settings or arguments (before any AWS call), 1 AWS-side failure. Each script only
says which settings model it reads, which template it deploys and which parameters it sends.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from aurelius.core.decision import MODEL_URI_PARAMETER, MODEL_VERSION_PARAMETER
from aurelius.core.model_version import ModelMissing, VersioningDisabled, current_model_version
from aurelius.exits import EXIT_AWS, EXIT_OK, EXIT_USAGE, UsageError
from aurelius.naming import InvalidName
from aurelius.scripts.stack_deploy import (
    DeployError,
    DeployResult,
    StackDeployer,
    StackSpec,
    keep_parameter,
    parameter,
    stack_parameters,
)
from aurelius.settings import Capacity, Environment, ModelLocation, Network, S, SettingsError, load_environment


@dataclass
class ScriptContext(Generic[S]):
    """What a script's ``build`` step gets: the environment, a boto3 session and the CLI args."""

    env: Environment[S]
    session: boto3.session.Session
    args: argparse.Namespace

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def stack_spec(
        self,
        template: Path,
        parameters: list[dict[str, Any]],
        what: str,
        capabilities: tuple[str, ...] = ("CAPABILITY_IAM",),
        role_arn: str | None = None,
    ) -> StackSpec:
        """What every aurelius stack sends besides its parameters: name, template, IAM
        capability (CAPABILITY_NAMED_IAM for a template that names its roles), the settings'
        tags plus the environment, and the CloudFormation service role if there is one."""
        return StackSpec(
            stack_name=self.env.stack_name,
            template_body=template.read_text(encoding="utf-8"),
            parameters=parameters,
            capabilities=capabilities,
            tags={**self.env.settings.tags, "aurelius:environment": self.env.name},
            description=f"aurelius {what}, environment {self.env.name}",
            role_arn=role_arn,
        )

    def network_parameters(self) -> list[dict[str, Any]]:
        """VpcId and SubnetIds, resolving `default_vpc: true` with EC2 describes."""
        vpc_id, subnet_ids = resolve_network(self.client("ec2"), self.env.settings.network)
        return [parameter("VpcId", vpc_id), parameter("SubnetIds", subnet_ids)]

    def service_network_parameters(self) -> list[dict[str, Any]]:
        """VpcId, TaskSubnetIds, LoadBalancerSubnetIds and LoadBalancerScheme of a ServiceNetwork."""
        network = self.env.settings.network
        vpc_id, task_subnets = resolve_network(self.client("ec2"), network)
        load_balancer_subnets = getattr(network, "load_balancer_subnet_ids", None) or task_subnets
        return [
            parameter("VpcId", vpc_id),
            parameter("TaskSubnetIds", task_subnets),
            parameter("LoadBalancerSubnetIds", load_balancer_subnets),
            parameter("LoadBalancerScheme", getattr(network, "load_balancer_scheme", "internet-facing")),
        ]


def capacity_parameters(capacity: Capacity) -> list[dict[str, Any]]:
    """An Auto Scaling group's MinSize, MaxSize and DesiredCapacity."""
    return [
        parameter("MinSize", capacity.min),
        parameter("MaxSize", capacity.max),
        parameter("DesiredCapacity", capacity.desired),
    ]


def resolve_network(ec2, network: Network) -> tuple[str, list[str]]:
    """VPC id and subnet ids: as configured, or the region's default VPC and its default subnets."""
    if not network.default_vpc:
        return network.vpc_id, list(network.subnet_ids)  # type: ignore[arg-type]
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DeployError("network.default_vpc is true but this region has no default VPC; set vpc_id and subnet_ids")
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    subnet_ids = sorted(s["SubnetId"] for s in subnets)
    if len(subnet_ids) < 2:
        raise DeployError(f"default VPC {vpc_id} has fewer than two default subnets; set vpc_id and subnet_ids")
    return vpc_id, subnet_ids


def add_model_version_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-version-id",
        help="pin this S3 VersionId of the model (default: keep the deployed one; on create, the current one)",
    )


def pinned_model_parameters(
    ctx: ScriptContext[Any], model: ModelLocation, deployed: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """ModelS3Uri / ModelVersionId for a stack deployed by a person (docs/design.md#who-moves-the-model).

    ``deployed`` is the stack as DescribeStacks returns it (None before the first create).
    Keep what is deployed unless a version is named; on create (or when the settings point at
    another object) take the model's current S3 version, and fail clearly if there is none.
    """
    pinned = ctx.args.model_version_id
    deployed_uri = stack_parameters(deployed).get(MODEL_URI_PARAMETER) if deployed else None
    if not pinned and deployed_uri == model.uri:
        return [keep_parameter(MODEL_URI_PARAMETER), keep_parameter(MODEL_VERSION_PARAMETER)]
    try:
        version = current_model_version(ctx.client("s3"), model.bucket, model.key, pinned)
    except (ModelMissing, VersioningDisabled) as exc:
        raise DeployError(f"{exc}; upload the model before deploying this stack") from None
    return [parameter(MODEL_URI_PARAMETER, version.uri), parameter(MODEL_VERSION_PARAMETER, version.version_id)]


def run_management_script(
    argv: Sequence[str] | None,
    *,
    description: str,
    default_settings: Path,
    model: type[S],
    build: Callable[[ScriptContext[S]], StackSpec],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    out: Callable[[str], None] = print,
    poll_seconds: float = 5.0,
    after: Callable[[ScriptContext[S], DeployResult], None] | None = None,
) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--environment", "-e", required=True, help="environment block of the settings file")
    parser.add_argument(
        "--settings", type=Path, default=default_settings, help=f"settings file (default: {default_settings})"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the change set, then delete it; change nothing")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)  # exits 2 on bad arguments

    try:
        env = load_environment(args.settings, model, args.environment)
    except (SettingsError, InvalidName) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    try:
        session = (
            boto3.session.Session(region_name=env.settings.region) if env.settings.region else boto3.session.Session()
        )
        ctx = ScriptContext(env, session, args)
        spec = build(ctx)
        result: DeployResult = StackDeployer(ctx.client("cloudformation"), out=out, poll_seconds=poll_seconds).deploy(
            spec, dry_run=args.dry_run
        )
        if after:  # what a script tells a person once its stack is there (e.g. the next commands)
            after(ctx, result)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DeployError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AWS
    out(f"{result.stack_name}: {result.action} done" + (f" ({result.status})" if result.status else ""))
    return EXIT_OK


def read_template(path: Path) -> str:
    return path.read_text(encoding="utf-8")
