"""A small HTTP client for the server tests (http.client: no extra dependency)."""

from __future__ import annotations

import http.client
import json
import socket
import time
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


def call(port: int, method: str, path: str, body: bytes | dict | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10) -> Reply:
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
