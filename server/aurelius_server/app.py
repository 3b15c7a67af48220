"""The process: read the config, bind, load the pinned model (answering 503 meanwhile), then
hand the socket to gunicorn's pre-forked workers; drain on SIGTERM and exit.

1. ``Config.from_env``; bind and listen on HOST:PORT.
2. The loading responder (``loading``) answers on that socket: ``/health`` is 503.
3. A thread downloads, verifies and unpickles the pinned version (``loader``) and runs the
   smoke test when one is configured (``smoke``); the main thread waits for it or a signal.
4. The responder stops; ``gc.freeze()``; gunicorn (``gunicorn_app``) takes the same socket
   (``fd://``) and forks the workers, which answer ``/health`` 200.
5. SIGTERM: gunicorn closes the socket, each worker answers 503 on ``/health`` for
   connections still open, finishes its requests in flight (at most
   SHUTDOWN_TIMEOUT_SECONDS), and the process exits 0.

Exit status: 0 after a SIGTERM stop, 1 when the model cannot be loaded, fails its smoke test
or the port cannot be bound, 2 when the configuration is invalid (restarting will not fix
that). Every start-up failure is one ERROR line with event ``startup_failed`` naming the model
URI and version.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from aurelius_server.config import Config, ConfigError
from aurelius_server.cpus import worker_count
from aurelius_server.loader import LoadedModel, ModelLoadError, load_model
from aurelius_server.loading import LoadingResponder
from aurelius_server.logs import LOGGER_NAME, configure_logging, log_event
from aurelius_server.smoke import SmokeTest, SmokeTestFailed, smoke_test_from_env
from aurelius_server.wsgi import ModelApp, ServerState

logger = logging.getLogger(LOGGER_NAME)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
LISTEN_BACKLOG = 2048  # gunicorn's default; connections wait here while the workers start


def bind(config: Config) -> socket.socket:
    """The listening socket, bound before anything slow happens. Raises OSError."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((config.host, config.port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def load_and_check(config: Config, smoke: SmokeTest | None, s3: Any = None) -> LoadedModel:
    """Load the pinned version and run its smoke test. Raises ModelLoadError or SmokeTestFailed."""
    started = time.monotonic()
    loaded = load_model(config.model, config.version_id, s3)
    log_event(
        logger,
        logging.INFO,
        "model_loaded",
        f"loaded model {loaded.location} version {loaded.version_id}",
        **loaded.describe(),
        size_bytes=loaded.size_bytes,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    if smoke is not None:
        try:
            smoke = smoke.with_metadata(loaded.metadata)
        except ValueError as exc:
            raise SmokeTestFailed(loaded, "metadata", f"the model object's user metadata: {exc}") from None
        smoke.run(loaded)
        log_event(
            logger,
            logging.INFO,
            "smoke_test_passed",
            f"smoke test passed for model {loaded.location} version {loaded.version_id}",
            model_version_id=loaded.version_id,
            rows=len(smoke.instances),
            expected=smoke.expected is not None,
            tolerance=smoke.tolerance,
        )
    return loaded


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    configure_logging()

    def startup_failed(message: str, **fields: Any) -> None:
        log_event(
            logger,
            logging.ERROR,
            "startup_failed",
            message,
            model_s3_uri=env.get("MODEL_S3_URI"),
            model_version_id=env.get("MODEL_VERSION_ID"),
            **fields,
        )

    try:
        config = Config.from_env(env)
        smoke = smoke_test_from_env(env)
    except ConfigError as exc:
        uri, version_id = env.get("MODEL_S3_URI") or "(unset)", env.get("MODEL_VERSION_ID") or "(unset)"
        startup_failed(f"invalid configuration for model {uri} version {version_id}: {exc}", reason=str(exc))
        return EXIT_CONFIG

    try:
        listener = bind(config)
    except OSError as exc:
        startup_failed(
            f"cannot serve model {config.model} version {config.version_id}: "
            f"cannot listen on {config.host}:{config.port}: {exc}",
            reason=str(exc),
        )
        return EXIT_FAILURE

    state = ServerState()
    app = ModelApp(config, state)
    responder = LoadingResponder(listener, app).start()
    port = listener.getsockname()[1]
    log_event(
        logger,
        logging.INFO,
        "listening",
        f"listening on {config.host}:{port}; loading the model",
        host=config.host,
        port=port,
        model_s3_uri=str(config.model),
        model_version_id=config.version_id,
    )

    wake = threading.Event()
    outcome: list[LoadedModel] = []
    failure: list[tuple[str, dict[str, Any]]] = []
    signalled: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signalled.append(signal.Signals(signum).name)
        wake.set()

    def load() -> None:
        try:
            outcome.append(load_and_check(config, smoke))
        except SmokeTestFailed as exc:
            failure.append((str(exc), {"check": exc.check}))
        except BaseException as exc:  # also a bug, or a pickle raising SystemExit: one clear line, exit 1
            failure.append(
                (
                    str(exc)
                    if isinstance(exc, ModelLoadError)
                    else f"cannot load model {config.model} version {config.version_id}: {type(exc).__name__}: {exc}",
                    {},
                )
            )
        finally:
            wake.set()

    previous = _install_signal_handlers(on_signal)
    # Daemon thread: a SIGTERM during a long download still stops the process promptly.
    loader = threading.Thread(target=load, name="model-loader", daemon=True)
    loader.start()
    while not wake.wait(timeout=1.0):
        pass
    responder.stop()
    if signalled or failure:
        listener.close()
        _restore_signal_handlers(previous)
        if signalled:
            log_event(
                logger, logging.INFO, "signal", f"received {signalled[0]} while loading; stopped", signal=signalled[0]
            )
            log_event(logger, logging.INFO, "stopped", "stopped before the model was served")
            return EXIT_OK
        message, fields = failure[0]
        startup_failed(message, **fields)
        return EXIT_FAILURE

    loader.join()  # finished: no thread of ours is left when gunicorn forks
    state.model = outcome[0]
    workers = worker_count(config.workers)
    log_event(
        logger,
        logging.INFO,
        "serving",
        f"serving model {config.model} version {config.version_id} with {workers} worker(s)",
        workers=workers,
        threads=config.threads,
        keepalive_s=config.keepalive,
        read_timeout_s=config.read_timeout,
        shutdown_timeout_s=config.shutdown_timeout,
        port=port,
    )
    gc.collect()
    gc.freeze()  # see gunicorn_app: the model's pages stay shared with the workers

    from aurelius_server.gunicorn_app import (
        ModelServer,  # only the serving process needs gunicorn
    )

    def when_ready(_arbiter: Any) -> None:
        # gunicorn's signal handlers replaced ours now; a signal that reached ours after the
        # model loaded is passed on to them.
        if signalled:
            os.kill(os.getpid(), signal.SIGTERM)

    server = ModelServer(app, config, state, listener.detach(), workers, when_ready=when_ready)
    server.run()  # gunicorn's master loop; leaves through sys.exit (0 after SIGTERM)
    return EXIT_OK


def _install_signal_handlers(handler: Any) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal.signal only works in the main thread (e.g. an in-process test)
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
