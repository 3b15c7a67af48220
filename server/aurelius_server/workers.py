"""The gunicorn worker: one event loop per process that reads requests without blocking and
answers them inline.

Why not gunicorn's ``gthread`` worker (which this server used before): it hands a readable
connection to a thread that then blocks reading the rest of the request, so 100 clients that
send their headers a line per second held every thread and nobody else was answered (0
answers in 2 s); and its threads took turns on the GIL for a 0.2 ms ``predict``. Here:

- one ``selectors`` loop (epoll) per worker holds every connection; bytes are parsed as they
  come (``http11``), and a request reaches the application only once it is whole. A slow or
  silent client costs a few bytes, never the worker's time;
- the application (``predict`` included) runs inline in the loop: one request at a time per
  process, which is what the GIL allows anyway, without a thread hand-off per request. A
  ``predict`` that takes long delays the other connections of that worker by as much: scale
  with workers (one per CPU), not threads;
- accepts are spread evenly over the workers (``balance``);
- SIGTERM: the worker closes its copy of the listening socket at once (the master closes its
  own, so the kernel refuses new connections and resets those still in the backlog instead of
  leaving them unanswered), ``/health`` answers 503, idle keep-alive connections are closed
  (a request already waiting on one is answered first, with ``Connection: close``), requests
  being read or answered finish (``Connection: close``), then the worker exits: within
  SHUTDOWN_TIMEOUT_SECONDS at most.

gunicorn stays the process manager: the preloaded model in the master, the forks, restarting a
worker that dies, the graceful-stop timer, the heartbeat.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import time
from typing import Any

from gunicorn.workers.base import Worker

from aurelius_server.balance import ConnectionShares
from aurelius_server.http11 import Connection, Settings
from aurelius_server.logs import LOGGER_NAME, log_event

logger = logging.getLogger(LOGGER_NAME)

TICK_SECONDS = 0.1  # deadlines are checked this often; the loop wakes at least this often
HEARTBEAT_SECONDS = 1.0
PAUSED_ACCEPT_SECONDS = 0.005  # how soon a worker that holds more connections than another looks again
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_WAKEUP = object()  # the selector key data of gunicorn's signal wake-up pipe


class ModelWorker(Worker):
    slot: int | None = None  # set by the master before the fork (gunicorn_app's pre_fork)

    def init_process(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.connections: set[Connection] = set()
        self.draining = False
        self.listening: list[socket.socket] = []
        self.in_app = False  # the loop is inside the application (a predict), not in its own code
        self.in_flight_at_signal = 0  # requests this worker was answering when SIGTERM arrived
        super().init_process()  # runs run()

    # ---- signals (run between two bytecodes of the loop, or of a predict) -----------------

    def handle_exit(self, sig: int, frame: Any) -> None:
        # A handler runs in the loop's own thread, between two bytecodes of whatever it was doing,
        # so it takes no lock and writes no line (the request's log line holds the write lock,
        # the request counter its own: waiting for either here waits forever). It records the
        # signal; the loop writes the "stopping" line (tests/server/signal_safety.py).
        if self.alive:
            self.app.state.stopping = True
            self.in_flight_at_signal = self.app.application.in_flight
            if self.in_app:
                # At once, even while a long predict runs. Only then: the loop itself may be
                # in the middle of changing its selector, and closes the listener first thing
                # when it wakes (the signal wakes it) otherwise.
                self._stop_listening()
        super().handle_exit(sig, frame)

    def _stop_listening(self) -> None:
        for listener in self.listening:
            try:
                self.selector.unregister(listener)
            except (KeyError, ValueError):
                pass
            try:
                listener.close()
            except OSError:
                pass
        self.listening = []

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        shares: ConnectionShares | None = getattr(self.app, "shares", None)
        config = self.app.config
        self.listening = [getattr(listener, "sock", listener) for listener in self.sockets]
        settings = Settings(
            self._inline,
            read_timeout=config.read_timeout,
            keepalive=config.keepalive,
            max_body_bytes=config.max_body_bytes,
            server_address=self.listening[0].getsockname()[:2],
        )
        for listener in self.listening:
            listener.setblocking(False)
            self.selector.register(listener, selectors.EVENT_READ)
        self.selector.register(self.PIPE[0], selectors.EVENT_READ, _WAKEUP)
        accepting, paused_until = True, 0.0
        next_tick = next_heartbeat = drain_deadline = 0.0

        while True:
            now = time.monotonic()
            if not self.alive and not self.draining:
                self.draining = True
                self._stop_listening()
                log_event(
                    logger,
                    logging.INFO,
                    "stopping",
                    "stopping: no new connections, finishing the requests in flight of this worker",
                    worker_pid=os.getpid(),
                    in_flight=self.in_flight_at_signal,
                    timeout_s=self.cfg.graceful_timeout,
                )
                drain_deadline = now + max(0.0, self.cfg.graceful_timeout - 0.5)
                for connection in list(self.connections):
                    connection.close_if_idle()
            if self.draining and (not self.connections or now >= drain_deadline):
                break

            if self.listening:
                allowed = now >= paused_until and (
                    shares is None or shares.may_accept(self.slot, len(self.connections), now)
                )
                if allowed != accepting:
                    for listener in self.listening:
                        if allowed:
                            self.selector.register(listener, selectors.EVENT_READ)
                        else:
                            self.selector.unregister(listener)
                    accepting = allowed
            timeout = TICK_SECONDS if accepting or not self.listening else PAUSED_ACCEPT_SECONDS

            for key, events in self.selector.select(timeout):
                data = key.data
                if data is None:
                    if self.listening:
                        paused_until = self._accept(key.fileobj, settings, shares)
                elif data is _WAKEUP:
                    try:
                        while os.read(self.PIPE[0], 4096):
                            pass
                    except OSError:
                        pass
                else:
                    if events & selectors.EVENT_READ and not data.closed:
                        data.on_readable()
                    if events & selectors.EVENT_WRITE and not data.closed:
                        data.on_writable()

            now = time.monotonic()
            if shares is not None:
                shares.publish(self.slot, len(self.connections), now)
            if now >= next_tick:
                next_tick = now + TICK_SECONDS
                for connection in [c for c in self.connections if now >= c.deadline]:
                    connection.expire(now)
            if now >= next_heartbeat:
                next_heartbeat = now + HEARTBEAT_SECONDS
                self.notify()
                if self.ppid != os.getppid():
                    log_event(logger, logging.WARNING, "master_gone", "the master process is gone; exiting")
                    break

        for connection in list(self.connections):
            connection.close()
        self.selector.close()

    def _inline(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.in_app = True
        try:
            return self.wsgi(environ, start_response)
        finally:
            self.in_app = False

    def _accept(self, listener: socket.socket, settings: Settings, shares: ConnectionShares | None) -> float:
        """Accept one connection (the loop comes back for the next); returns when to look again."""
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return 0.0
        except OSError as exc:
            if exc.errno in OUT_OF_FILES:
                log_event(logger, logging.WARNING, "accept_failed", f"cannot accept a connection: {exc}")
                return time.monotonic() + 0.1
            if exc.errno == errno.EBADF:  # closed by SIGTERM meanwhile
                return 0.0
            raise
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, address, settings, self)
        self.connections.add(connection)
        self.selector.register(sock, selectors.EVENT_READ, connection)
        if shares is not None:
            shares.publish(self.slot, len(self.connections))
        return 0.0

    # ---- the Owner protocol of http11.Connection ------------------------------------------

    def watch(self, connection: Connection, writable: bool) -> None:
        # While a response waits for the client to read it, nothing more is read from that
        # client: a client that sends requests and never reads the answers holds one response.
        self.selector.modify(connection.sock, selectors.EVENT_WRITE if writable else selectors.EVENT_READ, connection)

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        try:
            self.selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
