"""What every `aurelius` command shares: the default settings file and the boto3 client factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = REPO / "infra/ecs-service/management-scripts/service-settings.yml"
DEFAULT_SETTINGS_HELP = "service settings file (default: infra/ecs-service/management-scripts/service-settings.yml)"

# (service, region or None) -> boto3 client. Tests pass one that returns stubbed or fake clients.
ClientFactory = Callable[[str, "str | None"], Any]


def boto3_clients() -> ClientFactory:
    """One boto3 session per region (an environment's `region` setting wins over the default)."""
    sessions: dict[str | None, boto3.session.Session] = {}

    def client(service: str, region: str | None) -> Any:
        if region not in sessions:
            sessions[region] = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        return sessions[region].client(service)

    return client
