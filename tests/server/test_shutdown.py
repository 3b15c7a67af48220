"""Graceful stop on SIGTERM: /health turns 503, no new connections, requests in flight
answered (bounded wait), exit 0; all within ECS's stop timeout."""

from __future__ import annotations

import http.client
import threading
import time

from .helpers import call, refuses_connections
from .toy_model import SlowModel, SlowToLoad


def _wait_for_file(path, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.exists()


def test_sigterm_answers_the_request_in_flight_refuses_new_connections_then_exits_0(publish, start_server, tmp_path):
    # Given two workers, one of them in a predict() that takes 1.5 s
    marker = tmp_path / "predict-started"
    server = start_server(publish(SlowModel(delay=1.5, marker=str(marker))), WORKERS=2)
    replies = []
    client = threading.Thread(
        target=lambda: replies.append(call(server.port, "POST", "/predict", {"instances": [[1, 2]]}))
    )
    client.start()
    assert _wait_for_file(marker), "the request never reached predict()"

    # When the process gets SIGTERM (what ECS sends to stop the task)
    server.process.send_signal(15)

    # Then new connections are refused while that request is still running
    assert refuses_connections(server.port)
    assert server.process.poll() is None
    # And the request in flight gets its full answer, told to close the connection
    client.join(10)
    assert replies and replies[0].status == 200 and replies[0].json == {"predictions": [3]}
    assert replies[0].headers["connection"] == "close"
    # And the process exits 0, having logged one JSON object per line and nothing on stderr
    assert server.terminate() == 0
    stopping = server.events("stopping")
    assert len(stopping) == 2 and sum(line["in_flight"] for line in stopping) == 1
    assert server.lines[-1]["event"] == "stopped" and server.lines[-1]["level"] == "INFO"
    assert server.stderr == ""


def test_health_is_503_stopping_on_a_kept_alive_connection_after_sigterm(publish, start_server, tmp_path):
    # Given a keep-alive connection that has been answered once, and a request in flight
    # elsewhere that keeps the worker draining
    marker = tmp_path / "predict-started"
    server = start_server(publish(SlowModel(delay=2.0, marker=str(marker))), WORKERS=1)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/health")
    first = connection.getresponse()
    first.read()
    assert first.status == 200
    threading.Thread(target=call, args=(server.port, "POST", "/predict", {"instances": [[1]]}), daemon=True).start()
    assert _wait_for_file(marker)

    # When SIGTERM arrives (the worker stops listening at once, even mid-predict; its "stopping"
    # line comes when its loop next runs) and the load balancer checks /health again on that
    # connection while the predict still runs
    server.process.send_signal(15)
    assert refuses_connections(server.port)
    connection.request("GET", "/health")
    second = connection.getresponse()

    # Then the answer is 503 stopping, and the connection is closed after it
    assert (second.status, second.read()) == (503, b'{"status": "stopping"}')
    assert second.getheader("Connection") == "close"
    connection.close()
    assert server.terminate() == 0
    assert [line["in_flight"] for line in server.events("stopping")] == [1]


def test_a_stuck_request_is_given_up_after_the_shutdown_timeout(publish, start_server, tmp_path):
    # Given a request whose predict() takes far longer than SHUTDOWN_TIMEOUT_SECONDS (1 s)
    marker = tmp_path / "predict-started"
    server = start_server(publish(SlowModel(delay=30, marker=str(marker))), SHUTDOWN_TIMEOUT_SECONDS=1)
    outcome = []

    def stuck_client():
        try:
            outcome.append(call(server.port, "POST", "/predict", {"instances": [[1]]}, timeout=40))
        except OSError as exc:
            outcome.append(exc)

    client = threading.Thread(target=stuck_client, daemon=True)
    client.start()
    assert _wait_for_file(marker)

    # When the process gets SIGTERM
    started = time.monotonic()
    code = server.terminate(timeout=20)

    # Then it stops after about the shutdown timeout, not after the request, and still exits 0
    assert code == 0
    assert time.monotonic() - started < 10
    # And the unfinished request's connection was cut (no answer), not left hanging
    client.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], OSError)


def test_sigterm_while_the_model_is_loading_stops_at_once_with_exit_0(publish, start_server, tmp_path):
    # Given a server whose model load never finishes (until the test releases it)
    server = start_server(publish(SlowToLoad(str(tmp_path / "never-released"), [1.0])), healthy=False)
    assert call(server.port, "GET", "/health").status == 503

    # When the process gets SIGTERM
    started = time.monotonic()
    code = server.terminate(timeout=15)

    # Then it exits 0 promptly, without waiting for the load, and says so last
    assert code == 0
    assert time.monotonic() - started < 5
    assert [line["event"] for line in server.lines][-2:] == ["signal", "stopped"]
    assert server.stderr == ""
