"""Which environment a command works on: the service settings file and its clients."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aurelius.cli.clients import ClientFactory
from aurelius.settings import Environment, ServiceSettings, load_environment, load_environments

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"
DEFAULT_SETTINGS_HELP = "service settings file (default: infra/ecs-service/management-scripts/service-settings.yml)"


def environment(args: argparse.Namespace) -> Environment[ServiceSettings]:
    """The environment named by --environment, from --settings."""
    return load_environment(Path(args.settings), ServiceSettings, args.environment)


def every_environment(args: argparse.Namespace) -> list[Environment[ServiceSettings]]:
    return list(load_environments(Path(args.settings), ServiceSettings).values())


def s3_and_cloudformation(env: Environment[ServiceSettings], clients: ClientFactory) -> tuple[Any, Any]:
    """The environment's S3 and CloudFormation clients (its `region` setting wins)."""
    region = env.settings.region
    return clients("s3", region), clients("cloudformation", region)
