"""Deliver a signal handler at every line of Python some code runs: what a real signal can do.

A Python signal handler runs in the main thread, between two bytecodes of whatever that thread
is doing. If the interrupted code holds a plain lock (a log line being written, a counter being
updated, ``threading.Event``'s own lock) and the handler takes the same lock, the thread waits
for itself forever. A real signal hits such a window rarely: it did once in CI, where a worker
interrupted while writing a request's log line held its listening socket until the 20 s
graceful timeout. This harness hits every window, deterministically.

``python -m tests.server.signal_safety CASE`` runs one case in its own process (a deadlock
cannot leak into the test run): it prints ``ok <handler calls>`` and exits 0, or stays blocked
and the caller's timeout is the verdict.
"""

from __future__ import annotations

import signal
import sys
import types
from collections.abc import Callable
from typing import Any


def interrupt_at_every_line(work: Callable[[], Any], handler: Callable[[], Any]) -> int:
    """Run ``work()``, calling ``handler()`` before each of its lines (callees included); returns
    how many times the handler ran. The handler itself is not traced (CPython does not trace a
    trace function)."""
    calls = 0

    def trace(_frame: types.FrameType, event: str, _arg: Any) -> Any:
        nonlocal calls
        if event == "line":
            handler()
            calls += 1
        return trace

    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(None)
    return calls


def worker_answering_a_request() -> int:
    """SIGTERM's handler in a worker, while it answers /predict and writes the request's line."""
    from aurelius_server.logs import configure_logging
    from aurelius_server.workers import ModelWorker

    from .helpers import in_process_app, predict_environ

    configure_logging()
    application = in_process_app()
    # The worker as gunicorn leaves it before its loop (no socket, no fork)
    worker = ModelWorker.__new__(ModelWorker)
    worker.app = types.SimpleNamespace(state=application.state, application=application)
    worker.cfg = types.SimpleNamespace(graceful_timeout=20)
    worker.alive, worker.in_app, worker.listening = True, False, []

    def sigterm() -> None:
        worker.alive = True  # each delivery takes the handler's whole path
        worker.handle_exit(signal.SIGTERM, None)

    def answer() -> None:
        result = application(predict_environ(b'{"instances": [[1, 2]]}'), lambda status, headers: None)
        b"".join(result)
        result.close()  # writes the request's log line

    return interrupt_at_every_line(answer, sigterm)


def master_waiting_for_the_model() -> int:
    """SIGTERM's handler in the master, while it waits for the model loader."""
    from aurelius_server.app import Startup
    from aurelius_server.config import Config

    env = {"MODEL_S3_URI": "s3://models-bucket/model.pkl", "MODEL_VERSION_ID": "v1"}
    startup = Startup(env, Config.from_env(env), None)
    calls = interrupt_at_every_line(startup._wait_for_wake, lambda: startup._on_signal(signal.SIGTERM, None))
    assert startup._signal is not None and startup._signal.name == "SIGTERM"
    return calls


CASES = {
    "worker-answering-a-request": worker_answering_a_request,
    "master-waiting-for-the-model": master_waiting_for_the_model,
}

if __name__ == "__main__":
    print("ok", CASES[sys.argv[1]]())
