"""The server loads exactly the pinned S3 version and says which one it serves."""

from __future__ import annotations

import hashlib
import http.client
import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config as BotoConfig

from .helpers import Published, call, raw_exchange
from .toy_model import LinearModel, SlowToLoad

INSTANCES = [[1.0, 2.0], [3.0, 4.0]]


def test_serves_the_pinned_version_when_a_newer_version_exists(publish, start_server):
    # Given version 1 is pinned and version 2 of the same key was uploaded after it
    v1 = publish(LinearModel([1.0, 1.0], bias=0.0))
    v2 = publish(LinearModel([1.0, 1.0], bias=1000.0))
    assert v1.version_id != v2.version_id

    # When the server starts with version 1 pinned
    service = start_server(v1)

    # Then /version names version 1 and the sha256 of version 1's bytes
    version = call(service.port, "GET", "/version")
    assert version.status == 200
    assert version.json["model_s3_uri"] == v1.uri
    assert version.json["model_version_id"] == v1.version_id
    assert version.json["sha256"] == hashlib.sha256(v1.body).hexdigest()
    assert version.json["loaded_at"].endswith("Z")
    # And predictions come from version 1 (version 2 would add 1000)
    predicted = call(service.port, "POST", "/predict", {"instances": INSTANCES})
    assert predicted.status == 200
    assert predicted.json == {"predictions": [3.0, 7.0]}


def test_can_pin_the_newer_version_too(publish, start_server):
    # Given two versions of the model
    publish(LinearModel([1.0, 1.0], bias=0.0))
    v2 = publish(LinearModel([1.0, 1.0], bias=1000.0))

    # When version 2 is pinned
    service = start_server(v2)

    # Then version 2 is what answers
    assert call(service.port, "GET", "/version").json["model_version_id"] == v2.version_id
    assert call(service.port, "POST", "/predict", {"instances": INSTANCES}).json == {"predictions": [1003.0, 1007.0]}


def test_health_is_503_while_loading_and_200_once_the_model_is_loaded(publish, start_server, tmp_path):
    # Given a server whose model takes as long to load as the test wants
    release = tmp_path / "release-the-load"
    server = start_server(publish(SlowToLoad(str(release), [1.0])), healthy=False)
    port = server.port  # bound before loading starts

    # Then while it loads, /health answers 503 loading (not a refused connection),
    # and /version, /predict say the model is not loaded
    health = call(port, "GET", "/health")
    assert (health.status, health.json) == (503, {"status": "loading"})
    assert call(port, "GET", "/version").status == 503
    not_loaded = call(port, "POST", "/predict", {"instances": [[1.0]]})
    assert (not_loaded.status, not_loaded.json["error"], not_loaded.headers["retry-after"]) == (
        503,
        "model_not_loaded",
        "5",
    )
    # (the JSON contract holds while loading too: unknown paths and methods, unparsable requests)
    assert (call(port, "GET", "/admin").status, call(port, "BREW", "/predict").json["error"]) == (
        404,
        "not_implemented",
    )
    assert json.loads(raw_exchange(port, b"GET / HTTP/9\r\n\r\n").partition(b"\r\n\r\n")[2])["error"] == "bad_request"
    assert not server.events("model_loaded")

    # When the load finishes
    release.touch()
    server.wait_for("serving")

    # Then /health answers 200 from the workers, and predictions come from the model
    server.wait_healthy(timeout=10)
    health = call(port, "GET", "/health")
    assert (health.status, health.json) == (200, {"status": "ok"})
    assert call(port, "POST", "/predict", {"instances": [[2.0]]}).json == {"predictions": [2.0]}


@pytest.mark.parametrize("algorithm", ["SHA256", "CRC32"])
def test_version_reports_the_s3_checksum_it_verified(publish, start_server, algorithm):
    # Given a model uploaded with a stored checksum
    v1 = publish(LinearModel([1.0]), ChecksumAlgorithm=algorithm)

    # When the server loads it
    service = start_server(v1)

    # Then /version shows S3's checksum, verified over the downloaded bytes
    checksum = call(service.port, "GET", "/version").json["s3_checksum"]
    assert checksum["algorithm"] == algorithm
    assert checksum["verified"] is True
    assert checksum["value"]


def test_version_reports_a_null_s3_checksum_when_s3_stored_none(aws_env, bucket, start_server):
    # Given a model uploaded without any checksum (the client sends none, S3 stores none)
    plain = boto3.client("s3", config=BotoConfig(request_checksum_calculation="when_required"))
    body = pickle.dumps(LinearModel([1.0]))
    version_id = plain.put_object(Bucket=bucket, Key="models/plain.pkl", Body=body)["VersionId"]

    # When the server loads it
    service = start_server(Published(f"s3://{bucket}/models/plain.pkl", version_id, body))

    # Then s3_checksum is null and the sha256 is still recorded
    version = call(service.port, "GET", "/version").json
    assert version["s3_checksum"] is None
    assert version["sha256"] == hashlib.sha256(body).hexdigest()


def test_the_model_is_loaded_once_before_the_workers_fork(publish, start_server):
    # Given a server with two workers
    server = start_server(publish(LinearModel([1.0])), WORKERS=2)
    deadline = time.monotonic() + 10
    while len([line for line in server.lines if line["message"].startswith("Booting worker")]) < 2:
        assert time.monotonic() < deadline, server.lines
        time.sleep(0.05)

    # Then the model was downloaded and unpickled once, by the master, before any worker started
    assert len(server.events("model_loaded")) == 1
    order = [line["event"] if line["event"] != "log" else line["message"].split(" with")[0] for line in server.lines]
    assert order.index("model_loaded") < order.index("serving") < order.index("Booting worker")
    # And both workers are children of that master (forked: they share its pages until written)
    booted = [
        int(line["message"].rsplit(" ", 1)[1]) for line in server.lines if line["message"].startswith("Booting worker")
    ]
    for pid in booted:
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == server.process.pid
    # And both answer with that model
    assert {
        call(server.port, "POST", "/predict", {"instances": [[4.0]]}).json["predictions"][0] for _ in range(10)
    } == {4.0}


class _HoldingProxy(ThreadingHTTPServer):
    """An HTTP proxy in front of moto that holds every GetObject until ``release`` is set:
    a model download that takes as long as the test wants."""

    daemon_threads = True

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.release, self.held = threading.Event(), threading.Event()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HoldingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "GET" and "versionId=" in self.path:
            self.server.held.set()
            self.server.release.wait(30)
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=30)
        upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header(
            "Content-Length", answer.getheader("Content-Length") if self.command == "HEAD" else str(len(payload))
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


def test_health_is_503_during_a_slow_download_and_200_once_loaded(publish, start_server, moto_endpoint):
    # Given the server reaches S3 through a proxy that holds the model download
    proxy = _HoldingProxy(moto_endpoint)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        server = start_server(
            publish(LinearModel([3.0])), healthy=False, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}"
        )

        # When the download has started and is still running
        assert proxy.held.wait(20), server.lines
        # Then /health answers 503 loading, repeatedly
        for _ in range(3):
            health = call(server.port, "GET", "/health")
            assert (health.status, health.json) == (503, {"status": "loading"})

        # When the download completes
        proxy.release.set()

        # Then /health turns 200 and the model answers
        server.wait_healthy(timeout=20)
        assert call(server.port, "POST", "/predict", {"instances": [[2.0]]}).json == {"predictions": [6.0]}
    finally:
        proxy.release.set()
        proxy.shutdown()
        proxy.server_close()
