"""Fixtures for the model server tests: a moto S3 server on 127.0.0.1, a versioned bucket,
pickled toy models in it, and an in-process server on a free port."""

from __future__ import annotations

import logging
import pickle
import sys
import uuid
from typing import Any, Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from . import toy_model
from .helpers import SERVER_DIR, Published

if str(SERVER_DIR) not in sys.path:
    sys.path.insert(0, str(SERVER_DIR))  # what PYTHONPATH=server does for `python -m aurelius_server`

from aurelius_server.app import ModelService  # noqa: E402
from aurelius_server.config import Config, parse_s3_uri  # noqa: E402


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> dict[str, str]:
    """The environment a server process would get: plain boto3 pointed at moto."""
    values = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"models-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def publish(s3: Any, bucket: str) -> Callable[..., Published]:
    """Upload a model (pickled here) or raw bytes as a new version of ``key``."""

    def _publish(model: Any, key: str = "models/model.pkl", **put_kwargs: Any) -> Published:
        body = model if isinstance(model, bytes) else pickle.dumps(model)
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, **put_kwargs)
        return Published(f"s3://{bucket}/{key}", response["VersionId"], body)

    return _publish


@pytest.fixture
def start_service(s3: Any) -> Iterator[Callable[..., ModelService]]:
    """Start (bind, serve) an in-process server on 127.0.0.1, port 0; load only when asked."""
    started: list[ModelService] = []

    def _start(published: Published, load: bool = True, **config: Any) -> ModelService:
        service = ModelService(
            Config(model=parse_s3_uri(published.uri), version_id=published.version_id, host="127.0.0.1", port=0, **config),
            s3=s3,
        )
        started.append(service.start())
        if load:
            service.load()
        return service

    yield _start
    for service in started:
        if not service.server.stopping:
            service.stop(timeout=1)


@pytest.fixture
def gate() -> Iterator[None]:
    """Reset GatedModel's events, and never leave a predict() waiting after the test."""
    toy_model.GATE_ENTERED.clear()
    toy_model.GATE_RELEASE.clear()
    yield
    toy_model.GATE_RELEASE.set()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() configures the root logger for a process; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
