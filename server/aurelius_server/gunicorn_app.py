"""gunicorn, run in this process on a socket that is already bound and a model already loaded.

The master (this process) holds the loaded model; ``gc.freeze()`` moves every object it has
to the permanent generation right before each fork, so the collector in a worker never writes
to (and so never copies) the pages the model lives on. Workers are forked copies: nothing is
loaded twice.

Settings (from ``Config``): workers (``cpus``), ``threads`` per worker, ``keepalive`` longer
than the load balancer's idle timeout, ``graceful_timeout`` = SHUTDOWN_TIMEOUT_SECONDS. Logs:
gunicorn's own lines go through the same JSON handler as everything else; the access log is
off (the application writes one ``request`` line per request).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLoggerBase

from aurelius_server.config import Config
from aurelius_server.logs import LOGGER_NAME, log_event
from aurelius_server.wsgi import ServerState

logger = logging.getLogger(LOGGER_NAME)


class JsonGunicornLogger(GunicornLoggerBase):
    """gunicorn's error log through the root JSON handler; no access log (the app logs requests)."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self._access_log_enabled = False
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True

    def access(self, *args: Any, **kwargs: Any) -> None:
        pass

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(sys.exc_info()[1], TimeoutError):
            # a client that stalls mid-request (READ_TIMEOUT_SECONDS): its problem, not a server error
            log_event(logger, logging.WARNING, "request_timeout", f"closed a connection: {sys.exc_info()[1]}")
            return
        super().exception(msg, *args, **kwargs)


def honour_connection_close(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """gunicorn drops a ``Connection`` header an application sets; close the connection instead."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(name.lower() == "connection" and value.lower() == "close" for name, value in headers):
                response = getattr(start_response, "__self__", None)  # gunicorn's Response
                if response is not None and hasattr(response, "force_close"):
                    response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


def _freeze_before_fork(_arbiter: Any, _worker: Any) -> None:
    gc.freeze()


def _log_stopped(_arbiter: Any) -> None:
    log_event(logger, logging.INFO, "stopped", "stopped: every worker has finished or was stopped")


def _worker_tmp_dir() -> str | None:
    # The heartbeat file of each worker: in memory where there is /dev/shm (a container's
    # overlay filesystem can stall it), else gunicorn's default.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class ModelServer(BaseApplication):
    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        config: Config,
        state: ServerState,
        listener_fd: int,
        workers: int,
        when_ready: Callable[[Any], None] | None = None,
    ):
        self.application, self.config, self.state = app, config, state
        self.listener_fd, self.workers, self.when_ready = listener_fd, workers, when_ready
        super().__init__()

    def options(self) -> dict[str, Any]:
        return {
            "bind": [f"fd://{self.listener_fd}"],
            "workers": self.workers,
            "worker_class": "aurelius_server.workers.ModelWorker",
            "threads": self.config.threads,
            "keepalive": self.config.keepalive,
            "graceful_timeout": max(1, math.ceil(self.config.shutdown_timeout)),
            "preload_app": True,
            "logger_class": JsonGunicornLogger,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "control_socket_disable": True,
            "proc_name": "aurelius-model-server",
            "worker_tmp_dir": _worker_tmp_dir(),
            "pre_fork": _freeze_before_fork,
            "on_exit": _log_stopped,
        }

    def load_config(self) -> None:
        options = self.options()
        if self.when_ready is not None:
            options["when_ready"] = self.when_ready
        for name, value in options.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        return honour_connection_close(self.application)
