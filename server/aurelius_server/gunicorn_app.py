"""gunicorn as the process manager, run in this process on a socket that is already bound and a
model already loaded; the workers are ``workers.ModelWorker`` (an event loop each).

The master (this process) holds the loaded model; ``gc.freeze()`` moves every object it has
to the permanent generation right before each fork, so the collector in a worker never writes
to (and so never copies) the pages the model lives on. Workers are forked copies: nothing is
loaded twice. Before each fork the master also gives the worker a slot in the shared
connection counts (``balance``) that spread connections evenly over the workers.

Settings (from ``Config``): workers (``cpus``), ``keepalive`` longer than the load balancer's
idle timeout, ``graceful_timeout`` = SHUTDOWN_TIMEOUT_SECONDS. Logs: gunicorn's own lines go
through the same JSON handler as everything else; the access log is off (the application
writes one ``request`` line per request).
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

from aurelius_server.balance import ConnectionShares
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


# A worker that has not reported for this long is stuck in one request: the master replaces it.
# Longer than the load balancer's 60 s idle timeout, after which the client has its 504 anyway.
WORKER_STUCK_SECONDS = 90


def _before_fork(arbiter: Any, worker: Any) -> None:
    gc.freeze()
    shares = getattr(arbiter.app, "shares", None)
    if shares is not None:
        worker.slot = shares.free_slot({getattr(other, "slot", None) for other in arbiter.WORKERS.values()})
        # Counted as live with no connection while it boots: the workers already running leave
        # it the next connections rather than taking them all (for at most balance.STALE_SECONDS).
        shares.publish(worker.slot, 0)


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
        self.shares = ConnectionShares(workers)  # mapped here, before the forks: shared by the workers
        super().__init__()

    def options(self) -> dict[str, Any]:
        return {
            "bind": [f"fd://{self.listener_fd}"],
            "workers": self.workers,
            "worker_class": "aurelius_server.workers.ModelWorker",
            "keepalive": self.config.keepalive,
            "timeout": WORKER_STUCK_SECONDS,
            "graceful_timeout": max(1, math.ceil(self.config.shutdown_timeout)),
            "preload_app": True,
            "logger_class": JsonGunicornLogger,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "control_socket_disable": True,
            "proc_name": "aurelius-model-server",
            "worker_tmp_dir": _worker_tmp_dir(),
            "pre_fork": _before_fork,
            "on_exit": _log_stopped,
        }

    def load_config(self) -> None:
        options = self.options()
        if self.when_ready is not None:
            options["when_ready"] = self.when_ready
        for name, value in options.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        return self.application
