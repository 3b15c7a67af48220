"""HTTP/1.1 on one client connection, without blocking: bytes in, whole requests to the WSGI
application, responses out.

The worker's event loop (``workers``) calls ``on_readable`` when the socket has bytes; the
bytes go to httptools (llhttp, the parser Node.js uses), which calls back as the request line,
headers and body arrive. Nothing here ever waits for a client: a request is handed to the
application only once it is complete, so a client that sends its request slowly holds a few
bytes of memory, not a thread.

Deadlines (checked by the loop, ``expire``):
- a request must arrive whole within ``read_timeout`` of its first byte: a body that stops or
  trickles is answered ``408`` and the connection closed; headers that stall close it;
- a connection waiting for its next request is closed after ``keepalive``;
- a response the client does not read is dropped after ``read_timeout``.

Limits (gunicorn's defaults, which this server used before): request line 4094 bytes (414),
100 header fields of at most 8190 bytes each (431), 64 KiB of header block in all (431); a
body above ``max_body_bytes`` or a chunked one is not read: the application answers 413 / 411
from the headers and the connection is closed.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

import httptools

from aurelius_server.logs import LOGGER_NAME, log_event

logger = logging.getLogger(LOGGER_NAME)

MAX_REQUEST_LINE_BYTES = 4094
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADER_BLOCK_BYTES = 64 * 1024
RECV_BYTES = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

IDLE, READING, WRITING = "idle", "reading", "writing"
# The ``error`` codes of the answers this layer gives itself (JSON like every other answer).
ERROR_CODES = {
    400: "bad_request",
    408: "request_timeout",
    413: "body_too_large",
    414: "uri_too_long",
    431: "header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}
# method (an RFC 9110 token) SP request-target SP HTTP-version
_REQUEST_LINE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP/[0-9]\.[0-9]\r?$")


class Owner(Protocol):
    """What a connection needs from the loop that owns it."""

    draining: bool

    def watch(self, connection: Connection, writable: bool) -> None: ...

    def forget(self, connection: Connection) -> None: ...


class Settings:
    """Per-worker values every connection shares."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        read_timeout: float,
        keepalive: float,
        max_body_bytes: int,
        server_address: tuple[str, int],
    ):
        self.app, self.read_timeout, self.keepalive = app, read_timeout, keepalive
        self.max_body_bytes = max_body_bytes
        self.server_name, self.server_port = str(server_address[0]), str(server_address[1])


class _Reject(Exception):
    """Raised from a parser callback: answer ``status`` and close."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class _Early(Exception):
    """Raised from a parser callback: the request is queued without its body; stop parsing."""


class _Request:
    __slots__ = ("url", "headers", "body", "body_bytes", "method", "version", "keep_alive", "early")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.method = "GET"
        self.version = "1.1"
        self.keep_alive = False
        self.early = False  # answered from its headers; its body is not read


class Connection:
    """One accepted client socket (non-blocking) and the request being read on it."""

    def __init__(self, sock: socket.socket, address: Any, settings: Settings, owner: Owner):
        self.sock, self.settings, self.owner = sock, settings, owner
        self.remote = (str(address[0]), str(address[1])) if isinstance(address, tuple) else ("", "")
        self.parser = httptools.HttpRequestParser(self)
        self.phase = IDLE
        self.deadline = time.monotonic() + settings.keepalive
        self.closed = False
        self._current: _Request | None = None
        self._head_bytes = 0
        self._headers_done = False
        self._ready: deque[_Request] = deque()
        self._out = bytearray()
        self._close_after = False
        # What every request's WSGI environ on this connection has (PEP 3333); ``_environ`` adds the rest.
        self._base_environ: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": settings.server_name,
            "SERVER_PORT": settings.server_port,
            "REMOTE_ADDR": self.remote[0],
            "REMOTE_PORT": self.remote[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    # ---- the loop's calls ------------------------------------------------------------------

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()  # the client closed (a request it finished was answered already)
            return
        self._feed(data)

    def on_writable(self) -> None:
        self._flush()

    def expire(self, now: float) -> None:
        """The loop found the deadline passed."""
        if self.phase == READING:
            request = self._current
            log_event(
                logger,
                logging.WARNING,
                "request_timeout",
                f"closed a connection: the request did not arrive within {self.settings.read_timeout:g} s",
                client=self.remote[0],
                headers_received=self._headers_done,
            )
            if request is not None and self._headers_done:
                # The headers came, the body did not: tell the client why (RFC 9110 15.5.9).
                self._write_error(408, f"the request body did not arrive within {self.settings.read_timeout:g} s")
                return
        self.close()

    def close_if_idle(self) -> None:
        """Stopping: close at once unless a request is being read or answered.

        A request already in the socket buffer has reached the server: it is answered (with
        ``Connection: close``) rather than lost to a reset.
        """
        if self.phase != IDLE or self.closed:
            return
        self.on_readable()
        if not self.closed and self.phase == IDLE:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.owner.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._current = _Request()
        self._head_bytes = 0
        self._headers_done = False
        if self.phase != WRITING:  # (while writing, the write deadline runs; reset after it)
            self.phase = READING
            self.deadline = time.monotonic() + self.settings.read_timeout

    def on_url(self, url: bytes) -> None:
        request = self._current
        request.url += url
        if len(request.url) > MAX_REQUEST_LINE_BYTES:
            raise _Reject(414, f"the request target is longer than {MAX_REQUEST_LINE_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._current.headers
        if len(headers) >= MAX_HEADER_FIELDS:
            raise _Reject(431, f"more than {MAX_HEADER_FIELDS} header fields")
        if len(name) + len(value) > MAX_HEADER_FIELD_BYTES:
            raise _Reject(431, f"a header field is longer than {MAX_HEADER_FIELD_BYTES} bytes")
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        request, parser = self._current, self.parser
        self._headers_done = True
        request.method = parser.get_method().decode("ascii")
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        length, chunked, expect = None, False, b""
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = value
            elif lowered == b"transfer-encoding":
                chunked = True
            elif lowered == b"expect":
                expect = value.lower()
        too_large = length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes
        if chunked or too_large:
            # The application answers 411 / 413 from the headers alone; the body is not read.
            request.early = True
            self._ready.append(request)
            raise _Early
        if expect == b"100-continue" and length not in (None, b"0"):
            self._send(CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._current
        request.body_bytes += len(body)
        if request.body_bytes > self.settings.max_body_bytes:
            raise _Reject(413, f"the body is larger than {self.settings.max_body_bytes} bytes")
        request.body.append(body)

    def on_message_complete(self) -> None:
        self._ready.append(self._current)
        self._current = None
        self._headers_done = False

    # ---- reading ---------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        rejected: _Reject | None = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            reason = exc.__context__
            if isinstance(reason, _Reject):
                rejected = reason
            elif isinstance(reason, _Early):
                self._close_after = True
            else:
                raise
        except httptools.HttpParserUpgrade:
            self._close_after = True  # the request is answered; this server speaks no other protocol
        except httptools.HttpParserInvalidMethodError:
            if _REQUEST_LINE.match(data.split(b"\n", 1)[0]):  # well-formed, with a method llhttp does not know
                rejected = _Reject(501, "the request method is not supported")
            else:
                rejected = _Reject(400, "the request could not be parsed: not an HTTP request line")
        except httptools.HttpParserError as exc:
            rejected = _Reject(400, f"the request could not be parsed: {exc}")
        if rejected is None and self._current is not None and not self._headers_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BLOCK_BYTES:
                rejected = _Reject(431, f"the header block is larger than {MAX_HEADER_BLOCK_BYTES} bytes")
        self._answer_ready()
        if rejected is not None and not self.closed:
            log_event(
                logger,
                logging.WARNING,
                "request_rejected",
                f"rejected a request the HTTP layer could not accept: {rejected.status} {rejected.message}",
                status=rejected.status,
                client=self.remote[0],
            )
            self._write_error(rejected.status, rejected.message)

    # ---- answering -------------------------------------------------------------------------

    def _answer_ready(self) -> None:
        while self._ready and not self.closed and not self._out:
            self._respond(self._ready.popleft())
        if self.closed:
            return
        if self._out:
            return  # the rest is answered once the client has read this response
        if self._close_after:
            self.close()
        elif self._current is None:
            self.phase = IDLE
            self.deadline = time.monotonic() + self.settings.keepalive

    def _respond(self, request: _Request) -> None:
        status, headers, body, done = self._call_app(request)
        try:
            self._send_response(request, status, headers, body)
        finally:
            # PEP 3333: the server calls the result's close() once the request is complete. The
            # application writes its log line there, after the client has its answer.
            if done is not None:
                try:
                    done()
                except Exception:
                    log_event(
                        logger, logging.ERROR, "request_failed", "the application's close() raised", exc_info=True
                    )

    def _send_response(self, request: _Request, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        close = (
            request.early
            or not request.keep_alive
            or self._close_after
            or self.owner.draining
            or any(name.lower() == "connection" and value.lower() == "close" for name, value in headers)
        )
        lines = [f"HTTP/1.1 {status}\r\n"]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection":
                continue  # set below, once
            has_length = has_length or lowered == "content-length"
            lines.append(f"{name}: {value}\r\n")
        if not has_length:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append(f"Date: {_http_date()}\r\n")
        if close:
            lines.append("Connection: close\r\n")
            self._close_after = True
        elif request.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self._send(head if request.method == "HEAD" else head + body)

    def _call_app(self, request: _Request) -> tuple[str, list[tuple[str, str]], bytes, Callable[[], Any] | None]:
        """The application's status, headers, whole body, and the result's ``close`` (to call
        once the response is sent)."""
        started: list[Any] = []
        done: Callable[[], Any] | None = None

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        written: list[bytes] = []
        try:
            result = self.settings.app(self._environ(request), start_response)
            done = getattr(result, "close", None)
            body = b"".join([*written, *result])
        except Exception:
            log_event(logger, logging.ERROR, "request_failed", "the application raised", exc_info=True)
            started[:] = []
        if not started:
            self._close_after = True
            body = _error_body(500, "internal server error")
            return "500 Internal Server Error", [("Content-Type", "application/json")], body, done
        return started[0], started[1], body, done

    def _environ(self, request: _Request) -> dict[str, Any]:
        url = request.url
        path, _, query = url.partition(b"?")
        path = path.partition(b"#")[0]
        environ = self._base_environ.copy()
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["RAW_URI"] = url.decode("latin-1")
        environ["SERVER_PROTOCOL"] = f"HTTP/{request.version}"
        environ["wsgi.input"] = io.BytesIO(b"".join(request.body))
        for raw_name, raw_value in request.headers:
            key = _environ_key(raw_name)
            if key is None:
                continue
            value = raw_value.decode("latin-1").strip()
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def _write_error(self, status: int, message: str) -> None:
        body = _error_body(status, message)
        head = (
            f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nDate: {_http_date()}\r\nConnection: close\r\n\r\n"
        )
        self._close_after = True
        self._ready.clear()
        self._send(head.encode("latin-1") + body)
        if not self._out and not self.closed:
            self.close()

    # ---- writing ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self._out += data[sent:]
            self.phase = WRITING
            self.deadline = time.monotonic() + self.settings.read_timeout
            self.owner.watch(self, writable=True)

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self._out[:sent]
        if self._out:
            return
        self.owner.watch(self, writable=False)
        self.phase = READING if self._current is not None else IDLE
        if self.phase == READING:
            self.deadline = time.monotonic() + self.settings.read_timeout
        self._answer_ready()


@functools.lru_cache(maxsize=256)  # clients send the same few header names
def _environ_key(raw_name: bytes) -> str | None:
    """The environ key of a header (``HTTP_X_AMZN_TRACE_ID``, ``CONTENT_TYPE``), None to drop it."""
    if b"_" in raw_name:
        return None  # "X_Forwarded_For" would read as X-Forwarded-For in the environ: drop it
    name = raw_name.decode("latin-1").upper().replace("-", "_")
    return name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header (RFC 9110 6.6.1), formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": ERROR_CODES.get(status, "error"), "message": message}).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
