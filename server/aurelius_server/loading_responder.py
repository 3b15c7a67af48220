"""Answers on the listening socket while the model loads, then hands the socket over.

The socket is bound before the model loads so that the load balancer's health check gets a
503 from the start (a refused connection would look like a crashed target). This responder
serves the same WSGI application (``/health`` -> 503 loading, ``/predict`` -> 503
model_not_loaded), one request per connection, from a thread per connection. ``stop`` stops
accepting, ends the connections still open and waits for their threads, so that nothing of it
is left when gunicorn forks its workers on the same socket; connections that arrive in between
wait in the listen backlog and are accepted by the workers.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from aurelius_server.logs import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)

# A connection that sends no request within this time is dropped (only while loading).
REQUEST_TIMEOUT_SECONDS = 5.0
JOIN_SECONDS = 2.0


class _ServerHandler(ServerHandler):
    server_software = "aurelius-model-server"  # not the Python version


class _Handler(WSGIRequestHandler):
    """One request; answered HTTP/1.0, then the connection is closed."""

    timeout = REQUEST_TIMEOUT_SECONDS
    default_request_version = "HTTP/1.0"  # so that an error for an unparsable request has headers
    # A request line it cannot parse: JSON too, like every other answer.
    error_message_format = '{"error": "bad_request", "message": "the request could not be parsed (%(code)d)"}'
    error_content_type = "application/json"
    server_version, sys_version = "aurelius-model-server", ""

    def handle(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.parse_request():
                return  # parse_request answered
            handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True)
            handler.request_handler = self
            handler.run(self.server.get_app())
        except (OSError, ValueError):
            pass  # timed out, reset, or ended by stop(): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return io.StringIO()  # every line this server prints is JSON (the application logs its errors)


class LoadingResponder(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, listener: socket.socket, app: Callable[..., Any]):
        # bind_and_activate=False: the listening socket is the caller's, already bound
        super().__init__(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.server_name, self.server_port = listener.getsockname()[:2]
        self.setup_environ()
        self.set_app(_without_connection_header(app))
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        self._loop: threading.Thread | None = None

    def start(self) -> LoadingResponder:
        self._loop = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="loading-responder", daemon=True
        )
        self._loop.start()
        return self

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("loading responder: connection error", exc_info=True)

    def stop(self) -> None:
        """Stop accepting (the socket stays open for gunicorn), end open connections, join."""
        if self._loop is not None:
            self.shutdown()
            self._loop.join()
        with self._open_lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            try:
                connection.shutdown(socket.SHUT_RD)  # a thread waiting for a request line wakes up
            except OSError:
                pass
        for _, thread in still_open:
            thread.join(JOIN_SECONDS)


def _without_connection_header(app: Callable[..., Any]) -> Callable[..., Any]:
    """wsgiref refuses hop-by-hop headers from an application (and closes every connection anyway)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(
                status, [(name, value) for name, value in headers if name.lower() != "connection"], exc_info
            )

        return app(environ, start)

    return wrapped
