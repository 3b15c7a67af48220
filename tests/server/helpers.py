"""A small HTTP client for the server tests (http.client: no extra dependency)."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_DIR = Path(__file__).resolve().parents[2] / "server"  # holds the aurelius_server package


@dataclass
class Published:
    """One uploaded model version."""

    uri: str
    version_id: str
    body: bytes


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Reply:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def raw_exchange(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes as they are, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def refuses_connections(port: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            pass  # queued in the backlog as the listening socket closed: try again
        time.sleep(0.02)
    return False


def log_lines(text: str) -> list[dict]:
    """Every stdout line as JSON (fails the test on a line that is not one JSON object)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class ServerProcess:
    """``python -m aurelius_server`` in a child process, its stdout parsed line by line.

    The server is a pre-forking gunicorn master: it cannot run inside the test process.
    """

    def __init__(self, env: Mapping[str, str], cwd: Path | str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aurelius_server"],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict] = []
        self.raw_lines: list[str] = []
        self._changed = threading.Condition()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.raw_lines.append(line)
                if line.strip():
                    self.lines.append(json.loads(line))  # a non-JSON line fails the reader loudly
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def events(self, name: str) -> list[dict]:
        with self._changed:
            return [line for line in self.lines if line["event"] == name]

    def wait_for(self, *events: str, timeout: float = 30) -> dict:
        """The first line with one of ``events``; fails if the process exits or time runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if line["event"] in events:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._readers[0].is_alive()):
                    raise AssertionError(f"no {events} line; output so far: {self.lines} {self.stderr}")
                self._changed.wait(min(remaining, 0.1))

    @property
    def port(self) -> int:
        return self.wait_for("listening")["port"]

    def wait_healthy(self, timeout: float = 30) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}: {self.lines} {self.stderr}")
            try:
                if call(self.port, "GET", "/health", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server never answered /health 200: {self.lines}")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit status (and the last line of output)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def in_process_app() -> Any:
    """The WSGI application in this process (no server, no S3), serving ``LinearModel([1, 10])``
    as version v1 of s3://models-bucket/model.pkl; its ``state`` is the process's."""
    from aurelius_server.config import Config
    from aurelius_server.pinned_model import LoadedModel
    from aurelius_server.wsgi import ModelApp, ServerState

    from .toy_model import LinearModel

    config = Config.from_env({"MODEL_S3_URI": "s3://models-bucket/model.pkl", "MODEL_VERSION_ID": "v1"})
    loaded = LoadedModel(LinearModel([1.0, 10.0]), config.model, "v1", "0" * 64, None, "2026-12-02T00:00:00.000Z", 1)
    return ModelApp(config, ServerState(model=loaded, stopping=False))


def predict_environ(body: bytes) -> dict[str, Any]:
    """The WSGI environ of ``POST /predict`` with this body, as a worker hands it over."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict",
        "RAW_URI": "/predict",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
    }
