#!/usr/bin/env python3
"""Create or update the no-Docker stack: classic load balancer + Auto Scaling group whose
instances install and start the model server from a bundle on S3.

Usage: python infra/elb/management-scripts/deploy-elb.py --environment ENV
           [--settings FILE] [--dry-run] [--model-version-id VERSION]
Exit 0 done, 2 bad settings or arguments (nothing sent to AWS), 1 AWS-side failure.

The bundle (server/aurelius_server, server/requirements.txt and model-requirements.txt,
infra/elb/install-server.sh and the systemd unit: what install-server.sh checks for) is a
tar.gz named by its content hash in the settings' artifact_bucket, so an unchanged server
means an unchanged parameter and no instance replacement. The bucket is created (private,
encrypted, versioned, TLS only) when it does not exist. A dry run creates and uploads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from aurelius.scripts.buckets import BucketUnavailable, ensure_private_bucket
from aurelius.scripts.management import (
    ScriptContext,
    UsageError,
    add_model_version_argument,
    capacity_parameters,
    pinned_model_parameters,
    run_management_script,
)
from aurelius.scripts.stack_deploy import DeployError, StackSpec, describe_stack, parameter
from aurelius.settings import ElbSettings, SettingsError, model_loading_values

HERE = Path(__file__).resolve().parent
ELB_DIR = HERE.parent
REPO = ELB_DIR.parent.parent
TEMPLATE = ELB_DIR / "template.yaml"
SETTINGS = HERE / "service-settings.yml"
BUNDLE_FILES = {
    "install-server.sh": ELB_DIR / "install-server.sh",
    "aurelius-model-server.service": ELB_DIR / "aurelius-model-server.service",
    "server/requirements.txt": REPO / "server" / "requirements.txt",
    "server/model-requirements.txt": REPO / "server" / "model-requirements.txt",
}
SERVER_PACKAGE = REPO / "server" / "aurelius_server"


def server_bundle() -> bytes:
    """A reproducible tar.gz (fixed mtimes and owners) so the same sources give the same hash."""
    members: dict[str, Path] = dict(BUNDLE_FILES)
    for path in sorted(SERVER_PACKAGE.rglob("*.py")):
        members[f"server/aurelius_server/{path.relative_to(SERVER_PACKAGE)}"] = path
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(members.items()):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def upload_bundle(ctx: ScriptContext[ElbSettings]) -> str:
    bundle = server_bundle()
    bucket = ctx.env.settings.artifact_bucket
    key = f"aurelius/server-bundle-{hashlib.sha256(bundle).hexdigest()[:16]}.tar.gz"
    s3 = ctx.client("s3")
    try:
        ensure_private_bucket(s3, bucket, ctx.session.region_name, dry_run=ctx.args.dry_run)
    except BucketUnavailable as exc:
        raise DeployError(f"artifact_bucket: {exc}") from None
    if not ctx.args.dry_run:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=bundle, ServerSideEncryption="AES256")
        except ClientError as exc:
            raise DeployError(f"cannot upload the server bundle to s3://{bucket}/{key}: {exc}") from None
    return f"s3://{bucket}/{key}"


def load_balancer_network_parameters(ctx: ScriptContext[ElbSettings]) -> list[dict[str, Any]]:
    """VpcId and SubnetIds (the instances), LoadBalancerSubnetIds (default: the instances'
    subnets) and LoadBalancerScheme."""
    network = ctx.env.settings.network
    vpc_and_subnets = ctx.network_parameters()
    instance_subnets = next(p["ParameterValue"] for p in vpc_and_subnets if p["ParameterKey"] == "SubnetIds")
    return [
        *vpc_and_subnets,
        parameter("LoadBalancerSubnetIds", network.load_balancer_subnet_ids or instance_subnets),
        parameter("LoadBalancerScheme", network.load_balancer_scheme),
    ]


def build(ctx: ScriptContext[ElbSettings]) -> StackSpec:
    settings, names = ctx.env.settings, ctx.env.names
    try:
        # Reads the trust files: a bad one stops before any AWS call.
        model = [parameter(name, value) for name, value in model_loading_values(ctx.env).items()]
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    deployed = describe_stack(ctx.client("cloudformation"), ctx.env.stack_name)
    return ctx.stack_spec(
        TEMPLATE,
        [
            parameter("LoadBalancerName", names["elb"]),
            parameter("AutoScalingGroupName", names["asg"]),
            parameter("LaunchTemplateName", names["lt"]),
            *load_balancer_network_parameters(ctx),
            parameter("InstanceType", settings.instance_type),
            *capacity_parameters(settings.capacity),
            parameter("ImageId", settings.ami_parameter),
            parameter("ServerPort", settings.server_port),
            parameter("AllowedIngressCidr", settings.allowed_ingress_cidr),
            parameter("ServerBundleS3Uri", upload_bundle(ctx)),
            *model,
            *pinned_model_parameters(ctx, settings.model, deployed),
        ],
        what="model server without Docker",
    )


def main(argv: list[str] | None = None) -> int:
    return run_management_script(
        argv,
        description="Create or update the aurelius classic-load-balancer stack (no Docker).",
        default_settings=SETTINGS,
        model=ElbSettings,
        build=build,
        add_arguments=add_model_version_argument,
    )


if __name__ == "__main__":
    sys.exit(main())
