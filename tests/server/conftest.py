"""Fixtures for the model server tests: a moto S3 server on 127.0.0.1, a versioned bucket,
pickled toy models in it, and the server as its own process (``python -m aurelius_server``:
a pre-forking gunicorn master) on a free port."""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from . import toy_model
from .helpers import Published, ServerProcess


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_values(moto_endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> dict[str, str]:
    """The environment a server process would get: plain boto3 pointed at moto."""
    values = aws_values(moto_endpoint)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    return boto3.client("s3")


def versioned_bucket(s3: Any) -> str:
    """A new bucket with versioning on (the server loads a pinned VersionId)."""
    name = f"models-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def moto_s3(moto_endpoint: str) -> Any:
    """An S3 client for module- and session-scoped fixtures (no monkeypatched environment there)."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    return versioned_bucket(s3)


@pytest.fixture
def publish(s3: Any, bucket: str) -> Callable[..., Published]:
    """Upload a model (pickled here) or raw bytes as a new version of ``key``."""

    def _publish(model: Any, key: str = "models/model.pkl", **put_kwargs: Any) -> Published:
        body = model if isinstance(model, bytes) else pickle.dumps(model)
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, **put_kwargs)
        return Published(f"s3://{bucket}/{key}", response["VersionId"], body)

    return _publish


def server_env(aws: Mapping[str, str], published: Published, **settings: Any) -> dict[str, str]:
    """The environment of a server process for ``published``; ``settings`` as KEY=value (WORKERS=2)."""
    return {
        **os.environ,
        **aws,
        "PYTHONPATH": pythonpath_for_toy_model(),
        "MODEL_S3_URI": published.uri,
        "MODEL_VERSION_ID": published.version_id,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WORKERS": "1",
        **{name: str(value) for name, value in settings.items()},
    }


def pythonpath_for_toy_model() -> str:
    # Unpickling imports toy_model by its module name (e.g. "tests.server.toy_model"): put the
    # directory that holds its top-level package on the child's path (aurelius_server itself
    # is installed into the venv: `pip install -e server`).
    depth = len(toy_model.__name__.split("."))
    return str(Path(toy_model.__file__).resolve().parents[depth - 1])


@pytest.fixture
def start_server(aws_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m aurelius_server`` for a published model; by default wait until /health is 200."""
    started: list[ServerProcess] = []

    def _start(published: Published, healthy: bool = True, **settings: Any) -> ServerProcess:
        server = ServerProcess(server_env(aws_env, published, **settings), cwd=tmp_path)
        started.append(server)
        return server.wait_healthy() if healthy else server

    yield _start
    for server in started:
        server.terminate(timeout=30)


@pytest.fixture(scope="session")
def session_publish(moto_endpoint: str) -> Callable[..., Published]:
    """``publish`` for session-scoped fixtures: raw bytes as a new version in one session bucket."""
    s3 = moto_s3(moto_endpoint)
    name = versioned_bucket(s3)

    def _publish(body: bytes, key: str = "models/model.pkl", **put_kwargs: Any) -> Published:
        response = s3.put_object(Bucket=name, Key=key, Body=body, **put_kwargs)
        return Published(f"s3://{name}/{key}", response["VersionId"], body)

    return _publish


@contextmanager
def serving(moto_endpoint: str, published: Published, cwd: Path, **settings: Any) -> Iterator[ServerProcess]:
    """A server process for a module- or session-scoped fixture: healthy inside the block, stopped after."""
    server = ServerProcess(server_env(aws_values(moto_endpoint), published, **settings), cwd=cwd)
    try:
        yield server.wait_healthy(timeout=60)
    finally:
        server.terminate(timeout=30)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() configures the root logger for a process; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
