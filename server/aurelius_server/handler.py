"""HTTP routing: three endpoints, JSON everywhere (errors too), one access-log line per request.

Clients never see a stack trace or an exception text from the model: failures are logged
here and answered with a short JSON error (``{"error": code, "message": text}``).
"""

from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aurelius_server.logs import LOGGER_NAME, log_event
from aurelius_server.payload import ModelOutputError, PayloadError, parse_instances, render_predictions

if TYPE_CHECKING:
    from aurelius_server.loader import LoadedModel
    from aurelius_server.server import ModelHTTPServer

logger = logging.getLogger(LOGGER_NAME)


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, close: bool = False):
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.close = close  # the request body was not read: the connection cannot be reused
        super().__init__(message)


class ModelRequestHandler(BaseHTTPRequestHandler):
    server: "ModelHTTPServer"
    protocol_version = "HTTP/1.1"  # keep-alive for the load balancer
    server_version = "aurelius-model-server"
    sys_version = ""  # do not advertise the Python version
    timeout = 75  # idle keep-alive seconds: longer than the ALB / classic ELB idle timeout (60 s)

    # path -> HTTP method -> name of the method that answers it
    ROUTES = {
        "/predict": {"POST": "_predict"},
        "/health": {"GET": "_health"},
        "/version": {"GET": "_version"},
    }

    def _dispatch(self) -> None:
        started = time.monotonic()
        self._status: int | None = None
        with self.server.track_request():
            try:
                path = urlsplit(self.path).path
                methods = self.ROUTES.get(path)
                if methods is None:
                    raise HttpError(404, "not_found", f"no such path {path!r}: use POST /predict, GET /health or GET /version")
                endpoint = methods.get(self.command)
                if endpoint is None:
                    allowed = ", ".join(methods)
                    raise HttpError(405, "method_not_allowed", f"{path} accepts {allowed}", headers={"Allow": allowed})
                getattr(self, endpoint)()
            except HttpError as exc:
                if exc.close:
                    self.close_connection = True
                self._send_json(exc.status, {"error": exc.code, "message": exc.message}, exc.headers)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away; nothing left to answer
            except Exception:
                log_event(logger, logging.ERROR, "request_failed", "unhandled error while handling a request", exc_info=True, path=self.path)
                self.close_connection = True
                if self._status is None:
                    self._send_json(500, {"error": "internal_error", "message": "internal server error"})
        log_event(
            logger, logging.INFO, "request", f"{self.command} {self.path} {self._status}",
            method=self.command, path=self.path, status=self._status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            client=self.client_address[0], trace_id=self.headers.get("X-Amzn-Trace-Id"),
        )

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # ---- endpoints ---------------------------------------------------------------------

    def _health(self) -> None:
        if self.server.stopping:
            self._send_json(503, {"status": "stopping"})
        elif self.server.model is None:
            self._send_json(503, {"status": "loading"})
        else:
            self._send_json(200, {"status": "ok"})

    def _version(self) -> None:
        self._send_json(200, self._loaded().describe())

    def _predict(self) -> None:
        loaded = self._loaded()
        try:
            instances = parse_instances(self._read_body())
        except PayloadError as exc:
            raise HttpError(exc.status, exc.code, str(exc)) from None
        try:
            with self.server.predict_lock:
                raw = loaded.model.predict(instances)
            body = render_predictions(raw, len(instances))
        except Exception as exc:
            if isinstance(exc, ModelOutputError):
                log_event(logger, logging.ERROR, "predict_bad_output", str(exc), model_version_id=loaded.version_id)
            else:
                log_event(logger, logging.ERROR, "predict_failed", "predict() raised", exc_info=True, model_version_id=loaded.version_id)
            raise HttpError(500, "prediction_failed", "the model could not make a prediction") from None
        self._send(200, body)

    # ---- helpers -----------------------------------------------------------------------

    def _loaded(self) -> "LoadedModel":
        loaded = self.server.model
        if loaded is None:
            raise HttpError(503, "model_not_loaded", "the model is still loading", headers={"Retry-After": "5"})
        return loaded

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HttpError(411, "length_required", "send the body with a Content-Length, not chunked", close=True)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise HttpError(411, "length_required", "a Content-Length header is required", close=True)
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HttpError(400, "invalid_content_length", f"Content-Length {raw_length!r} is not a byte count", close=True) from None
        limit = self.server.config.max_body_bytes
        if length > limit:
            raise HttpError(413, "body_too_large", f"the body is {length} bytes; the limit is {limit}", close=True)
        body = self.rfile.read(length)
        if len(body) != length:
            raise HttpError(400, "incomplete_body", f"expected {length} bytes, got {len(body)}", close=True)
        return body

    def _send_json(self, status: int, document: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        if self.server.stopping:
            self.close_connection = True  # draining: clients reconnect to another target
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- BaseHTTPRequestHandler hooks: JSON errors and JSON logs -------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised before routing (malformed request line, unknown method): JSON too."""
        log_event(logger, logging.WARNING, "http_error", f"{code} {message or ''}".strip(), client=self.client_address[0])
        self.close_connection = True
        self._status = None
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = "error"
        self._send_json(code, {"error": reason.lower().replace(" ", "_"), "message": message or reason})

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def log_request(self, code="-", size="-") -> None:  # noqa: ANN001 - replaced by the access log in _dispatch
        pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log_event(logger, logging.WARNING, "http_error", format % args, client=self.client_address[0])
