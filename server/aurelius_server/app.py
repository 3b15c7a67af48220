"""The process: read the config, bind, load the pinned model, serve, drain on SIGTERM, exit.

Exit status: 0 after a SIGTERM/SIGINT stop, 1 when the model cannot be loaded or the port
cannot be bound, 2 when the configuration is invalid (restarting will not fix that).
Every start-up failure is one ERROR line with event ``startup_failed`` naming the model URI
and version.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Mapping

from aurelius_server.config import Config, ConfigError
from aurelius_server.handler import ModelRequestHandler
from aurelius_server.loader import LoadedModel, ModelLoadError, load_model
from aurelius_server.logs import LOGGER_NAME, configure_logging, log_event
from aurelius_server.server import ModelHTTPServer

logger = logging.getLogger(LOGGER_NAME)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class ModelService:
    """One server's life, without signals or exit codes (so tests can drive it in-process)."""

    def __init__(self, config: Config, s3: Any = None):
        self.config = config
        self._s3 = s3
        self.server: ModelHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "ModelService":
        """Bind and start answering (/health is 503 until ``load`` succeeds). Raises OSError."""
        self.server = ModelHTTPServer(self.config, ModelRequestHandler)
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-server", daemon=True
        )
        self._thread.start()
        log_event(logger, logging.INFO, "listening", f"listening on {self.config.host}:{self.port}; loading the model",
                  host=self.config.host, port=self.port,
                  model_s3_uri=str(self.config.model), model_version_id=self.config.version_id)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None, "start() first"
        return self.server.port

    def load(self) -> LoadedModel:
        """Load the pinned version and start serving it. Raises ModelLoadError."""
        assert self.server is not None, "start() first"
        started = time.monotonic()
        loaded = load_model(self.config.model, self.config.version_id, self._s3)
        self.server.model = loaded
        log_event(
            logger, logging.INFO, "model_loaded", f"loaded model {loaded.location} version {loaded.version_id}",
            **loaded.describe(), size_bytes=loaded.size_bytes, duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return loaded

    def stop(self, timeout: float | None = None) -> bool:
        """Stop accepting, wait (bounded) for requests in flight. True if all finished."""
        assert self.server is not None, "start() first"
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        log_event(logger, logging.INFO, "stopping", "stopping: no new connections, finishing requests in flight",
                  in_flight=self.server.in_flight, timeout_s=timeout)
        drained = self.server.drain(timeout)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if drained:
            log_event(logger, logging.INFO, "stopped", "stopped; every request in flight was answered")
        else:
            log_event(logger, logging.WARNING, "stopped", f"stopped after {timeout} s with requests still in flight",
                      in_flight=self.server.in_flight)
        return drained


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    configure_logging()

    def startup_failed(message: str, **fields: Any) -> None:
        log_event(logger, logging.ERROR, "startup_failed", message,
                  model_s3_uri=env.get("MODEL_S3_URI"), model_version_id=env.get("MODEL_VERSION_ID"), **fields)

    try:
        config = Config.from_env(env)
    except ConfigError as exc:
        uri, version_id = env.get("MODEL_S3_URI") or "(unset)", env.get("MODEL_VERSION_ID") or "(unset)"
        startup_failed(f"invalid configuration for model {uri} version {version_id}: {exc}", reason=str(exc))
        return EXIT_CONFIG

    service = ModelService(config)
    wake = threading.Event()
    failure: list[str] = []
    signalled: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signalled.append(signal.Signals(signum).name)
        wake.set()

    def load() -> None:
        try:
            service.load()
        except BaseException as exc:  # also a bug, or a pickle raising SystemExit: one clear line, exit 1
            failure.append(str(exc) if isinstance(exc, ModelLoadError) else
                           f"cannot load model {config.model} version {config.version_id}: {type(exc).__name__}: {exc}")
            wake.set()

    previous = _install_signal_handlers(on_signal)
    try:
        try:
            service.start()
        except OSError as exc:
            startup_failed(f"cannot serve model {config.model} version {config.version_id}: "
                           f"cannot listen on {config.host}:{config.port}: {exc}", reason=str(exc))
            return EXIT_FAILURE
        # Daemon thread: a SIGTERM during a long download still stops the process promptly.
        threading.Thread(target=load, name="model-loader", daemon=True).start()
        while not wake.wait(timeout=1.0):
            pass
        if failure and not signalled:
            startup_failed(failure[0])
            service.stop(timeout=0)
            return EXIT_FAILURE
        log_event(logger, logging.INFO, "signal", f"received {signalled[0]}", signal=signalled[0])
        service.stop()
        return EXIT_OK
    finally:
        _restore_signal_handlers(previous)


def _install_signal_handlers(handler: Any) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal.signal only works in the main thread (e.g. an in-process test)
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
