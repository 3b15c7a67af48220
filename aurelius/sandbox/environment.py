"""A moto server on 127.0.0.1 with fake credentials, and the local Lambda runtime wired to it.

Nothing leaves loopback: every client (ours, the management scripts run as subprocesses, the
AWS CLI a person types) reaches moto through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import boto3

from aurelius.sandbox import moto_compat
from aurelius.sandbox.local_lambda import LocalLambdaRuntime

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class LocalAws:
    endpoint: str
    runtime: LocalLambdaRuntime

    @property
    def environment(self) -> dict[str, str]:
        """Variables that point any boto3 / AWS CLI process at this sandbox."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_PAGER": "",
        }

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION)


@contextmanager
def local_aws(delivery_delay: float = 0.5, lambda_log: TextIO | None = None) -> Iterator[LocalAws]:
    """Start moto on a free loopback port, point this process at it, stop it on exit."""
    from moto.server import ThreadedMotoServer

    # moto reports every resource type it skips (docs/moto.md lists them) and the server logs
    # every request; neither helps a person reading the demo's timeline.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::")
    moto_compat.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its state per process, not per server: start from an empty AWS.
    urllib.request.urlopen(
        urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10
    ).close()
    runtime = LocalLambdaRuntime(delivery_delay=delivery_delay, log=lambda_log or sys.stdout)
    detach = runtime.attach_to_moto()
    sandbox = LocalAws(endpoint=f"http://{host}:{port}", runtime=runtime)
    saved = {key: os.environ.get(key) for key in sandbox.environment}
    saved["AWS_PROFILE"] = os.environ.pop("AWS_PROFILE", None)
    os.environ.update(sandbox.environment)
    try:
        yield sandbox
    finally:
        detach()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
