"""Clients that misbehave: idle connections, bodies and headers that trickle in, requests the
HTTP layer cannot parse, keep-alive past its time. Behaviour is asserted, with generous bounds."""

from __future__ import annotations

import json
import threading
import time

import pytest

from .helpers import call, connect, raw_exchange
from .slow_clients import read_response, read_until_closed
from .toy_model import LinearModel


@pytest.fixture
def server(publish, start_server):
    return start_server(publish(LinearModel([1.0, 1.0])), WORKERS=1, READ_TIMEOUT_SECONDS=1, KEEPALIVE_SECONDS=3)


def test_200_idle_connections_do_not_keep_health_from_answering_within_a_second(server):
    # Given 200 connections that were accepted and send nothing (one worker)
    idle = [connect(server.port) for _ in range(200)]
    try:
        time.sleep(0.5)  # let the worker accept them all

        # When the load balancer checks /health on a new connection
        started = time.monotonic()
        reply = call(server.port, "GET", "/health", timeout=5)
        elapsed = time.monotonic() - started

        # Then it is answered 200 within a second
        assert reply.status == 200
        assert elapsed < 1.0, f"/health took {elapsed:.2f} s behind 200 idle connections"
        # And a prediction is answered too
        assert call(server.port, "POST", "/predict", {"instances": [[1, 2]]}, timeout=5).json == {"predictions": [3.0]}
    finally:
        for sock in idle:
            sock.close()


def test_a_body_that_stops_arriving_is_cut_off_with_408(server):
    # Given a request that announces 100 bytes of body and sends 10
    with connect(server.port) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"instance'
        )

        # When it sends nothing more
        reply, elapsed = read_until_closed(sock, limit=10)

    # Then after the read timeout (1 s) the server answers 408 in JSON and closes the connection
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply
    assert b"Connection: close" in head
    assert json.loads(body)["error"] == "request_timeout"
    assert 0.5 < elapsed < 5


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline(server):
    # Given a request whose body arrives one byte every 0.1 s (a 100-byte body would take 10 s)
    with connect(server.port) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        stop = threading.Event()

        def trickle():
            for _ in range(100):
                if stop.wait(0.1):
                    return
                try:
                    sock.send(b" ")
                except OSError:
                    return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()

        # When the server reads it
        reply, elapsed = read_until_closed(sock, limit=10)
        stop.set()

    # Then it gives up at its 1 s deadline for the whole request, not per byte: 408, closed
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert elapsed < 5


def test_headers_that_stop_arriving_close_the_connection(server):
    # Given a request whose header block never ends
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")

        # When it sends nothing more
        reply, elapsed = read_until_closed(sock, limit=10)

    # Then the server closes the connection after about the read timeout
    assert reply == b""
    assert elapsed < 5
    # And logs a warning, not an error with a traceback
    warning = server.wait_for("request_timeout", timeout=5)
    assert warning["level"] == "WARNING" and "exception" not in warning


def test_a_request_the_http_layer_cannot_parse_gets_a_json_400(server):
    # Given a request line that is not HTTP
    # When it is sent
    reply = raw_exchange(server.port, b"NOT AN HTTP REQUEST\r\n\r\n")

    # Then the answer is a 400 in JSON (not an HTML page), and the connection is closed
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == "bad_request"


def test_an_idle_keep_alive_connection_is_kept_for_the_keep_alive_time_then_closed(server):
    # Given a keep-alive connection that was answered once (KEEPALIVE_SECONDS=3)
    with connect(server.port) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200")

        # When it stays idle for 1.5 s, the connection still serves the next request
        time.sleep(1.5)
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200")

        # Then, idle again, the server closes it after about the keep-alive time
        reply, elapsed = read_until_closed(sock, limit=10)
    assert reply == b""
    assert 2 < elapsed < 6
