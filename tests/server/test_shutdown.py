"""Graceful stop: no new connections, requests in flight answered (bounded wait), exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import toy_model
from .helpers import SERVER_DIR, call, log_lines, refuses_connections
from .toy_model import GatedModel, SlowModel


def test_stop_finishes_the_request_in_flight_and_refuses_new_connections(publish, start_service, gate):
    # Given a request whose predict() is running
    service = start_service(publish(GatedModel()))
    replies = []
    client = threading.Thread(target=lambda: replies.append(call(service.port, "POST", "/predict", {"instances": [[1, 2, 3]]})))
    client.start()
    assert toy_model.GATE_ENTERED.wait(5)

    # When the server is asked to stop (what SIGTERM does)
    results = []
    stopper = threading.Thread(target=lambda: results.append(service.stop(timeout=5)))
    stopper.start()

    # Then new connections are refused while that request is still running
    assert refuses_connections(service.port)
    assert service.server.in_flight == 1 and not results
    # And once predict() returns, the client gets its full answer and the stop completes
    toy_model.GATE_RELEASE.set()
    client.join(5)
    stopper.join(5)
    assert replies[0].status == 200
    assert replies[0].json == {"predictions": [3]}
    assert replies[0].headers["connection"] == "close"
    assert results == [True]


def test_stop_waits_only_a_bounded_time_for_a_stuck_request(publish, start_service, gate):
    # Given a request whose predict() does not return
    service = start_service(publish(GatedModel()))
    threading.Thread(target=call, args=(service.port, "POST", "/predict", {"instances": [[1]]}), daemon=True).start()
    assert toy_model.GATE_ENTERED.wait(5)

    # When the server stops with a 0.3 s limit
    started = time.monotonic()
    drained = service.stop(timeout=0.3)

    # Then it gives up after about that long and reports the request as unfinished
    assert drained is False
    assert time.monotonic() - started < 2


def _pythonpath_for_toy_model() -> str:
    # Unpickling imports toy_model by its module name (e.g. "server.toy_model"): put the
    # directory that holds its top-level package on the child's path.
    depth = len(toy_model.__name__.split("."))
    return os.pathsep.join([str(SERVER_DIR), str(Path(toy_model.__file__).resolve().parents[depth - 1])])


def test_sigterm_lets_the_process_answer_the_request_in_flight_then_exit_0(publish, aws_env, tmp_path):
    # Given `python -m aurelius_server` serving a model whose predict() takes 0.5 s
    marker = tmp_path / "predict-started"
    published = publish(SlowModel(delay=0.5, marker=str(marker)))
    env = {**os.environ, "PYTHONPATH": _pythonpath_for_toy_model(), "MODEL_S3_URI": published.uri,
           "MODEL_VERSION_ID": published.version_id, "HOST": "127.0.0.1", "PORT": "0"}
    process = subprocess.Popen([sys.executable, "-m", "aurelius_server"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in process.stdout:  # the first lines: listening, ..., model_loaded
            entry = log_lines(line)[0]
            port = entry.get("port", port)
            if entry["event"] in ("model_loaded", "startup_failed"):
                break
        assert entry["event"] == "model_loaded", entry
        replies = []
        client = threading.Thread(target=lambda: replies.append(call(port, "POST", "/predict", {"instances": [[1, 2]]})))
        client.start()
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the request never reached predict()"

        # When the process gets SIGTERM
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        client.join(5)
    finally:
        if process.poll() is None:
            process.kill()

    # Then the request in flight was answered, and the process exited 0
    assert replies and replies[0].status == 200 and replies[0].json == {"predictions": [3]}
    assert process.returncode == 0, err
    # And everything it logged is one JSON object per line (nothing on stderr)
    lines = log_lines(out)
    stopping = next(line for line in lines if line["event"] == "stopping")
    assert stopping["in_flight"] == 1
    assert lines[-1]["event"] == "stopped" and lines[-1]["level"] == "INFO"
    assert err == ""
