"""The process: read the config, bind, load the pinned model (answering 503 meanwhile), then
hand the socket to gunicorn's pre-forked workers; drain on SIGTERM and exit.

1. ``Config.from_env``; bind and listen on HOST:PORT.
2. The loading responder (``loading_responder``) answers on that socket: ``/health`` is 503.
3. A thread downloads the pinned version, checks its signature when trust is configured
   (``verification``), scans and deserialises it (``pinned_model``) and runs the smoke test
   when one is configured (``smoke``); the main thread waits for it or a signal. ``Startup``
   holds these steps and their one result.
4. The responder stops; ``gc.freeze()``; gunicorn (``gunicorn_app``) takes the same socket
   (``fd://``) and forks the workers, which answer ``/health`` 200.
5. SIGTERM: gunicorn closes the socket, each worker answers 503 on ``/health`` for
   connections still open, finishes its requests in flight (at most
   SHUTDOWN_TIMEOUT_SECONDS), and the process exits 0.

Exit status: 0 after a SIGTERM stop, 1 when the model cannot be loaded, fails its smoke test
or the port cannot be bound, 2 when the configuration is invalid (restarting will not fix
that). Every start-up failure is one ERROR line with event ``startup_failed`` naming the model
URI and version; a refused signature or pickle also carries ``reason`` (``signature_missing``,
``digest_mismatch``, ``pickle_refused``, ...).
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aurelius_server.config import Config, ConfigError
from aurelius_server.cpus import worker_count
from aurelius_server.loading_responder import LoadingResponder
from aurelius_server.logs import LOGGER_NAME, configure_logging, log_event
from aurelius_server.pickle_scan import DANGEROUS, Finding, ScanResult
from aurelius_server.pinned_model import LoadedModel, load_model
from aurelius_server.s3_download import ModelLoadError, make_s3_client
from aurelius_server.smoke import SmokeTest, SmokeTestFailed, smoke_test_from_env
from aurelius_server.verification import SignatureGate
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
    s3 = s3 if s3 is not None else make_s3_client()
    at_load: set[Finding] = set()
    loaded = load_model(
        config.model,
        config.version_id,
        s3,
        model_format=config.model_format,
        trusted_types=config.skops_trusted_types,
        verify=SignatureGate(config, s3),  # starts importing model_signing now, during the download
        scan_mode=config.pickle_scan,
        on_scan=lambda result: _log_scan(config, result),
        on_finding=at_load.add,
    )
    _log_imports_seen_while_loading(config, at_load)
    log_event(
        logger,
        logging.INFO,
        "model_loaded",
        f"loaded model {loaded.location} version {loaded.version_id} ({loaded.format})",
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


def _log_scan(config: Config, result: ScanResult) -> None:
    """The static scan's findings, before a byte is deserialised (WARNING when it found a dangerous import)."""
    level = logging.WARNING if result.dangerous else logging.INFO
    if result.dangerous_imports:
        verdict = f"dangerous imports {', '.join(result.dangerous_imports)}"
    else:
        verdict = "unreadable" if result.dangerous else "no dangerous import"
    log_event(
        logger,
        level,
        "model_scanned",
        f"pickle scan of model {config.model} version {config.version_id}: {verdict} (MODEL_PICKLE_SCAN={config.pickle_scan})",
        model_version_id=config.version_id,
        mode=config.pickle_scan,
        **result.as_json(),
    )


def _log_imports_seen_while_loading(config: Config, found: set[Finding]) -> None:
    """Dangerous imports the guarded unpickler let through (MODEL_PICKLE_SCAN=warn only: under
    refuse it raised). Suspicious ones (every scikit-learn class) are already in ``model_scanned``."""
    dangerous = sorted(str(finding) for finding in found if finding.level == DANGEROUS)
    if dangerous:
        log_event(
            logger,
            logging.WARNING,
            "model_dangerous_imports_loaded",
            f"model {config.model} version {config.version_id} imported {', '.join(dangerous)} while loading "
            f"(MODEL_PICKLE_SCAN={config.pickle_scan})",
            model_version_id=config.version_id,
            dangerous_imports=dangerous,
        )


@dataclass
class Loaded:
    model: LoadedModel


@dataclass
class Failed:
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Signalled:
    name: str


class Startup:
    """bind -> loading responder -> load in a thread -> wait -> one result -> serve (or exit).

    ``run`` returns the exit status; a served model leaves through gunicorn (``serve``).
    """

    def __init__(self, env: Mapping[str, str], config: Config, smoke: SmokeTest | None):
        self.env, self.config, self.smoke = env, config, smoke
        self.state = ServerState()
        self.app = ModelApp(config, self.state)
        self._wake: queue.SimpleQueue[str] = queue.SimpleQueue()  # "loaded" or "signal"
        self._loaded: Loaded | Failed | None = None
        self._signal: Signalled | None = None

    def run(self) -> int:
        try:
            listener = bind(self.config)
        except OSError as exc:
            startup_failed(
                self.env,
                f"cannot serve model {self.config.model} version {self.config.version_id}: "
                f"cannot listen on {self.config.host}:{self.config.port}: {exc}",
                reason=str(exc),
            )
            return EXIT_FAILURE
        result = self._load_while_answering(listener)
        if isinstance(result, Loaded):
            return self.serve(listener, result.model)
        listener.close()
        if isinstance(result, Signalled):
            log_event(
                logger, logging.INFO, "signal", f"received {result.name} while loading; stopped", signal=result.name
            )
            log_event(logger, logging.INFO, "stopped", "stopped before the model was served")
            return EXIT_OK
        startup_failed(self.env, result.message, **result.fields)
        return EXIT_FAILURE

    def _load_while_answering(self, listener: socket.socket) -> Loaded | Failed | Signalled:
        """The one result of loading: the model, a failure, or a signal (which wins)."""
        responder = LoadingResponder(listener, self.app).start()
        port = listener.getsockname()[1]
        log_event(
            logger,
            logging.INFO,
            "listening",
            f"listening on {self.config.host}:{port}; loading the model",
            host=self.config.host,
            port=port,
            model_s3_uri=str(self.config.model),
            model_version_id=self.config.version_id,
        )
        previous = _install_signal_handlers(self._on_signal)
        # Daemon thread: a SIGTERM during a long download still stops the process promptly.
        loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        loader.start()
        self._wait_for_wake()
        responder.stop()
        if self._signal is not None or not isinstance(self._loaded, Loaded):
            _restore_signal_handlers(previous)
            return self._signal or self._loaded
        loader.join()  # finished: no thread of ours is left when gunicorn forks
        return self._loaded

    def _wait_for_wake(self) -> None:
        """Until the loader has finished or a signal arrived."""
        self._wake.get()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Records the signal and wakes the main thread through a SimpleQueue, whose put() is
        # reentrant (https://docs.python.org/3/library/queue.html#queue.SimpleQueue.put), as
        # gunicorn's master does: the handler runs in the main thread, and threading.Event.set()
        # would wait for the lock that the interrupted Event.wait() holds between its checks.
        if self._signal is None:
            self._signal = Signalled(signal.Signals(signum).name)
        self._wake.put_nowait("signal")

    def _load(self) -> None:
        config = self.config
        try:
            self._loaded = Loaded(load_and_check(config, self.smoke))
        except SmokeTestFailed as exc:
            self._loaded = Failed(str(exc), {"check": exc.check})
        except ModelLoadError as exc:
            self._loaded = Failed(str(exc), {"reason": exc.code} if exc.code else {})
        except BaseException as exc:  # also a bug, or a pickle raising SystemExit: one clear line, exit 1
            self._loaded = Failed(
                f"cannot load model {config.model} version {config.version_id}: {type(exc).__name__}: {exc}"
            )
        finally:
            self._wake.put("loaded")

    def serve(self, listener: socket.socket, loaded: LoadedModel) -> int:
        """Hand the socket, the app and the loaded model to the workers (``gunicorn_app``)."""
        config, port = self.config, listener.getsockname()[1]
        self.state.model = loaded
        workers = worker_count(config.workers)
        log_event(
            logger,
            logging.INFO,
            "serving",
            f"serving model {config.model} version {config.version_id} with {workers} worker(s)",
            workers=workers,
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
            if self._signal is not None:
                os.kill(os.getpid(), signal.SIGTERM)

        server = ModelServer(self.app, config, self.state, listener.detach(), workers, when_ready=when_ready)
        server.run()  # gunicorn's master loop; leaves through sys.exit (0 after SIGTERM)
        return EXIT_OK


def startup_failed(env: Mapping[str, str], message: str, **fields: Any) -> None:
    """The one ERROR line of a failed start, naming the model URI and version as configured."""
    log_event(
        logger,
        logging.ERROR,
        "startup_failed",
        message,
        model_s3_uri=env.get("MODEL_S3_URI"),
        model_version_id=env.get("MODEL_VERSION_ID"),
        **fields,
    )


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    configure_logging()
    try:
        config = Config.from_env(env)
        smoke = smoke_test_from_env(env)
    except ConfigError as exc:
        uri, version_id = env.get("MODEL_S3_URI") or "(unset)", env.get("MODEL_VERSION_ID") or "(unset)"
        startup_failed(env, f"invalid configuration for model {uri} version {version_id}: {exc}", reason=str(exc))
        return EXIT_CONFIG
    return Startup(env, config, smoke).run()


def _install_signal_handlers(handler: Any) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal.signal only works in the main thread (e.g. an in-process test)
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
