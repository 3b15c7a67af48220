#!/usr/bin/env python3
"""Create or update the ECR repository of the model server image (a stack of its own).

Usage: python infra/ecs-service/management-scripts/create-image-repository.py --environment ENV
           [--settings FILE] [--dry-run] [--keep-images N] [--tag TAG]
Exit 0 done, 2 bad settings or arguments (nothing sent to AWS), 1 AWS-side failure.

Reads the service settings (the repository belongs to the service) and names the repository
{base_name}-ecr-{environment}-{suffix}. Then prints the commands that build server/ and push
it, and the `image:` value to put in the service settings. Tags are immutable: give each build
a new tag (--tag; default: the tag of the settings' current image).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import ClientError

from aurelius.scripts.image_repository import ImageRepositorySettings, push_commands, tag_of
from aurelius.scripts.management import ScriptContext, UsageError, run_management_script
from aurelius.scripts.stack_deploy import DeployResult, StackSpec, parameter

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "image-repository.yaml"
SETTINGS = HERE / "service-settings.yml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-images", type=int, default=20, metavar="N", help="images the lifecycle policy keeps (default 20)"
    )
    parser.add_argument("--tag", help="tag for the push commands (default: the tag of image: in the settings)")


def build(ctx: ScriptContext[ImageRepositorySettings]) -> StackSpec:
    if not 1 <= ctx.args.keep_images <= 1000:
        raise UsageError("--keep-images must be between 1 and 1000")
    return ctx.stack_spec(
        TEMPLATE,
        [parameter("RepositoryName", ctx.env.names["ecr"]), parameter("KeepImages", ctx.args.keep_images)],
        what="model server image repository",
        capabilities=(),
    )


def repository_uri(ctx: ScriptContext[ImageRepositorySettings]) -> str | None:
    """The repository's URI from ECR itself (moto leaves a change-set-created stack's outputs empty)."""
    try:
        (repository,) = ctx.client("ecr").describe_repositories(repositoryNames=[ctx.env.names["ecr"]])["repositories"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return None
        raise
    return repository["repositoryUri"]


def print_push_commands(ctx: ScriptContext[ImageRepositorySettings], result: DeployResult, out=print) -> None:
    uri = result.outputs.get("RepositoryUri") or repository_uri(ctx)
    if not uri:  # a dry run before the first create: the repository does not exist yet
        out(f"after the real run: push the image to {ctx.env.names['ecr']} with the commands it prints")
        return
    tag = ctx.args.tag or tag_of(ctx.env.settings.image)
    out("\nBuild and push the model server image (from the repository root; needs Docker and the AWS CLI):\n")
    for command in push_commands(uri, tag, ctx.session.region_name):
        out(f"  {command}")
    out(f"\nthen set, in {ctx.env.source.name} (environments.{ctx.env.name}):\n\n  image: {uri}:{tag}\n")


def main(argv: list[str] | None = None) -> int:
    return run_management_script(
        argv,
        description="Create or update the aurelius model server image repository (Amazon ECR).",
        default_settings=SETTINGS,
        model=ImageRepositorySettings,
        build=build,
        add_arguments=add_arguments,
        after=print_push_commands,
    )


if __name__ == "__main__":
    sys.exit(main())
