"""gunicorn's threaded worker (gthread), with three changes this server needs.

1. A new connection waits for its first byte in the worker's poller, not in a thread.
   gunicorn hands a freshly accepted connection to a pool thread, which waits up to 5 s for
   data before parking it: 200 connections that send nothing would hold every thread and
   keep ``/health`` waiting for minutes. Here it is parked at once (for at most the
   keep-alive time) and only a connection with bytes to read takes a thread.
2. A request must arrive whole within ``READ_TIMEOUT_SECONDS`` of its first byte (headers and
   body together; a body that trickles in is cut off with 408, headers that stall close the
   connection). gunicorn's HTTP/1 reads have no timeout of their own.
3. Errors gunicorn answers itself (a request it cannot parse) are JSON like every other
   answer, and SIGTERM flips the process's ``ServerState.stopping`` so that ``/health`` answers
   503 on connections still open while the worker drains.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from aurelius_server.logs import LOGGER_NAME, log_event
from aurelius_server.wsgi import error_body

logger = logging.getLogger(LOGGER_NAME)


class DeadlineSocket(socket.socket):
    """A client socket whose blocking reads share one deadline per request.

    gunicorn switches a connection to blocking mode (``setblocking(True)``) each time a
    thread starts on a request; that starts the clock. Every read then waits at most for
    what is left of it; writes wait at most ``read_timeout`` each.
    """

    read_timeout = 10.0
    _deadline: float | None = None

    def setblocking(self, flag: bool) -> None:
        if flag:
            self._deadline = time.monotonic() + self.read_timeout
            super().settimeout(self.read_timeout)
        else:
            self._deadline = None
            super().setblocking(False)

    def _limit(self) -> None:
        if self._deadline is not None and self.gettimeout():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the request did not arrive within {self.read_timeout:g} s")
            super().settimeout(remaining)

    def recv(self, *args: Any) -> bytes:
        self._limit()
        return super().recv(*args)

    def recv_into(self, *args: Any) -> int:
        self._limit()
        return super().recv_into(*args)


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = error_body(status_int, mesg or reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class ModelWorker(ThreadWorker):
    def init_process(self) -> None:
        # gunicorn writes an HTML page for a request it cannot parse; this process answers JSON.
        util.write_error = _write_json_error
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.alive:
            self.app.state.stopping = True
            log_event(
                logger,
                logging.INFO,
                "stopping",
                "stopping: no new connections, finishing the requests in flight of this worker",
                worker_pid=os.getpid(),
                in_flight=self.app.application.in_flight,
                timeout_s=self.cfg.graceful_timeout,
            )
        super().handle_exit(sig, frame)

    def accept(self, listener: socket.socket) -> None:
        try:
            accepted, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        client = DeadlineSocket(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
        client.read_timeout = self.app.config.read_timeout
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())
        # Park it like a connection whose first wait timed out (see gunicorn's finish_request):
        # the poller hands it to a thread once it is readable, or closes it after keep-alive.
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
