"""The HTTP layer under slow clients and during a stop: 100 slowloris connections do not slow
anyone else, connections are spread over the workers, and SIGTERM leaves no request hanging.

Times are asserted with wide margins (a CI machine has 2 shared cores and other tests running);
the exact numbers are `make bench` rows (row 8)."""

from __future__ import annotations

import http.client
import json
import statistics
import time

import pytest

from bench.server_load import open_sockets

from .helpers import call, connect, refuses_connections
from .slow_clients import (
    KeepAliveClients,
    SlowHeaders,
    read_response,
    read_until_closed,
    worker_pids,
)
from .toy_model import LinearModel


def test_100_slow_header_connections_leave_predict_and_health_fast(publish, start_server):
    # Given one worker and 100 connections sending their headers a line per second
    server = start_server(publish(LinearModel([1.0, 1.0])), WORKERS=1)
    slow = SlowHeaders(server.port, 100)
    try:
        time.sleep(1.5)  # every slow connection was accepted and has sent a line or two

        # When a keep-alive client asks for 50 predictions, and the load balancer checks /health
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        latencies = []
        for _ in range(50):
            started = time.monotonic()
            connection.request("POST", "/predict", body=json.dumps({"instances": [[1, 2]]}))
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"predictions": [3.0]}')
            latencies.append(time.monotonic() - started)
        connection.close()
        started = time.monotonic()
        health = call(server.port, "GET", "/health", timeout=5)
        health_seconds = time.monotonic() - started

        # Then both are answered at once: the goal is p50 <= 5 ms (bench row 8); 50 ms here
        # leaves room for a loaded CI machine, and is still far below the 10 s a slow client
        # could hold a thread of the previous worker
        assert statistics.median(latencies) < 0.05, latencies
        assert health.status == 200 and health_seconds < 1.0
        # And the slow connections were not simply dropped to get there
        assert slow.open_count() == 100
    finally:
        slow.close()


def test_connections_are_spread_evenly_over_the_workers(publish, start_server):
    # Given two workers
    server = start_server(publish(LinearModel([1.0, 1.0])), WORKERS=2)
    workers = worker_pids(server.process.pid, 2)
    assert len(workers) == 2
    before = {pid: open_sockets(pid) for pid in workers}

    # When a client opens 8 keep-alive connections, each answered once, one after the other
    connections = []
    try:
        for _ in range(8):
            sock = connect(server.port)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            connections.append(sock)

        # Then each worker holds 4 of them, give or take one (gunicorn's own worker: 7 and 1)
        held = sorted(open_sockets(pid) - before[pid] for pid in workers)
        assert sum(held) == 8 and held[1] - held[0] <= 1, held
    finally:
        for sock in connections:
            sock.close()


@pytest.mark.parametrize("slow_count", [0, 100], ids=["alone", "with-100-slow-connections"])
def test_sigterm_under_load_leaves_no_request_hanging(publish, start_server, slow_count):
    # Given two workers, 8 keep-alive clients sending predictions back to back, and maybe 100
    # slow-header connections
    server = start_server(publish(LinearModel([1.0, 1.0])), WORKERS=2, READ_TIMEOUT_SECONDS=3)
    slow = SlowHeaders(server.port, slow_count) if slow_count else None
    clients = KeepAliveClients(server.port, 8, timeout=5)
    try:
        time.sleep(1.0)
        assert clients.outcomes["answered"] > 0

        # When the process gets SIGTERM under that load
        signalled = time.monotonic()
        server.process.send_signal(15)

        # Then every client is refused a new connection in the end, and no request hung
        assert clients.wait_until_done(timeout=15)
        assert clients.outcomes["hung"] == 0, clients.outcomes
        assert clients.outcomes["refused"] == 8, clients.outcomes
        # And a request that raced the close of its connection is at most one per client and
        # connection attempt (it never reached a server that would answer it)
        assert clients.outcomes["closed"] <= 16, clients.outcomes
        # And answers given once the workers were stopping told the client to close
        late = [answer for answer in clients.answered_since(signalled + 0.5)]
        assert all(connection == "close" for _, _, connection in late), late
        # And the process exits 0, the slow connections cut at their read deadline (3 s)
        assert server.terminate(timeout=20) == 0
        assert time.monotonic() - signalled < 10
    finally:
        clients.stop()
        if slow is not None:
            slow.close()


def test_sigterm_closes_idle_connections_at_once_and_answers_a_request_still_arriving(publish, start_server):
    # Given one worker, an idle keep-alive connection answered once, and a request whose
    # header block has not ended yet
    server = start_server(publish(LinearModel([1.0, 1.0])), WORKERS=1, READ_TIMEOUT_SECONDS=5)
    port = server.port
    idle = connect(port)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(idle).startswith(b"HTTP/1.1 200")
    arriving = connect(port)
    arriving.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)

    # When the process gets SIGTERM
    server.process.send_signal(15)

    # Then the idle connection is closed within a second, while the worker still drains
    reply, elapsed = read_until_closed(idle, limit=5)
    assert reply == b"" and elapsed < 1.0
    assert server.process.poll() is None
    # And new connections are refused, not left in a backlog nobody accepts from
    assert refuses_connections(port)
    # And the request still arriving is answered once whole: 503 stopping, Connection: close
    arriving.sendall(b"\r\n")
    reply, _ = read_until_closed(arriving, limit=5)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"Connection: close" in head
    assert json.loads(body) == {"status": "stopping"}
    # And then the worker has nothing left: the process exits 0
    assert server.terminate(timeout=10) == 0
    idle.close()
    arriving.close()
