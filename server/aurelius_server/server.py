"""The HTTP server: the listening socket, the model slot, requests in flight, a graceful stop.

The socket is bound before the model loads, so /health can answer 503 while loading.
Connections get a thread each (daemon threads: an idle keep-alive connection never holds up
exit). Requests, not connections, are counted in flight; ``drain`` stops accepting, then waits
a bounded time for that count to reach zero.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from aurelius_server.config import Config
from aurelius_server.loader import LoadedModel
from aurelius_server.logs import LOGGER_NAME, log_event

logger = logging.getLogger(LOGGER_NAME)


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 drops connections under bursts

    def __init__(self, config: Config, handler: type[BaseHTTPRequestHandler]):
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        self.config = config
        self.model: LoadedModel | None = None  # set once, when loading succeeds
        self.stopping = False
        self.predict_lock = threading.Lock()  # a pickled model is not assumed thread-safe
        self._idle = threading.Condition()
        self._in_flight = 0
        super().__init__((config.host, config.port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on a DNS
        # lookup in a container; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._in_flight

    @contextmanager
    def track_request(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Stop accepting, then wait up to ``timeout`` s for requests in flight. True if none are left.

        Call from a thread other than the one running ``serve_forever``.
        """
        self.stopping = True
        self.shutdown()  # serve_forever returns: no more accept()
        self.server_close()  # close the listening socket: new connections are refused
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver API
        log_event(logger, logging.ERROR, "connection_error", "unhandled error on a connection", exc_info=True, client=client_address[0])
