"""How every `aurelius` command gets its AWS clients: plain boto3, one session per region."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

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
