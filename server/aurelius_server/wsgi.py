"""The WSGI application: four endpoints, JSON everywhere (errors too), one log line per request.

Clients never see a stack trace or an exception text from the model: failures are logged
here and answered with a short JSON error (``{"error": code, "message": text}``).

The same application answers while the model loads (``loading_responder``) and
once it is loaded (the workers' event loops): ``ServerState`` says which.
A response that must end its connection (the request body was not read, or the server is
stopping) carries ``Connection: close``; the HTTP layer (``http11``) sends it and closes the
connection after that response.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aurelius_server.config import Config
from aurelius_server.logs import LOGGER_NAME, log_event, log_info_line
from aurelius_server.metrics import emf_fields
from aurelius_server.payload import ModelOutputError, PayloadError, parse_request, render
from aurelius_server.pinned_model import LoadedModel

logger = logging.getLogger(LOGGER_NAME)

# Methods HTTP defines (RFC 9110 section 9 and PATCH): anything else is 501, as before.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})


@dataclass
class ServerState:
    """What this process serves. ``model`` is set once; ``stopping`` once SIGTERM arrived."""

    model: LoadedModel | None = None
    stopping: bool = False


class HttpError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, close: bool = False
    ):
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.close = close  # the request body was not (fully) read: the connection cannot be reused
        super().__init__(message)


class ModelApp:
    # path -> HTTP method -> name of the method that answers it
    ROUTES = {
        "/predict": {"POST": "_predict"},
        "/predict_proba": {"POST": "_predict_proba"},
        "/health": {"GET": "_health"},
        "/version": {"GET": "_version"},
    }

    def __init__(self, config: Config, state: ServerState):
        self.config, self.state = config, state
        self.predict_lock = threading.Lock()  # a pickled model is not assumed thread-safe
        self._counter_lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests this process is answering right now. Read without the lock (reading an int is
        atomic; only the updates need it): SIGTERM's handler reads it, and may have interrupted
        an update in the same thread."""
        return self._in_flight

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._counter_lock:
            self._in_flight += 1
        try:
            return self._answer(environ, start_response)
        finally:
            with self._counter_lock:
                self._in_flight -= 1

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> _Answered:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        request = _Request(environ)
        try:
            status, body, headers = self._route(request, method, path)
        except HttpError as exc:
            request.close = request.close or exc.close
            status, body, headers = exc.status, _json({"error": exc.code, "message": exc.message}), exc.headers
        except Exception:
            log_event(
                logger,
                logging.ERROR,
                "request_failed",
                "unhandled error while handling a request",
                exc_info=True,
                path=environ.get("RAW_URI", path),
            )
            request.close = True
            status, body, headers = 500, _json({"error": "internal_error", "message": "internal server error"}), {}
        response_headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers.items(),
        ]
        if request.close or self.state.stopping:
            response_headers.append(("Connection", "close"))  # draining: clients reconnect to another target
        start_response(f"{status} {_phrase(status)}", response_headers)
        return _Answered(body, lambda: self._log_request(environ, request, status, started))

    def _log_request(self, environ: dict[str, Any], request: _Request, status: int, started: float) -> None:
        """The request's log line (with its metrics), written once the response is sent: its
        ``duration_ms`` runs from the request reaching the application to the response handed to
        the socket, and the client does not wait for the line."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
        duration_ms = round((time.monotonic() - started) * 1000, 3)
        fields: dict[str, Any] = {}
        if request.model_version is not None and (request.validated or status >= 500):
            # Bad input (4xx) is the client's and is left out; a 5xx of /predict always counts.
            fields = emf_fields(
                self.config.service_name,
                request.model_version,
                predicted=request.validated,
                failed=status >= 500,
                latency_ms=duration_ms,
            )
        log_info_line(
            logger,
            "request",
            f"{method} {path} {status}",
            {
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "client": environ.get("REMOTE_ADDR"),
                "trace_id": environ.get("HTTP_X_AMZN_TRACE_ID"),
                **fields,
            },
        )

    def _route(self, request: _Request, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        if method not in KNOWN_METHODS:
            raise HttpError(501, "not_implemented", f"method {method!r} is not supported", close=True)
        methods = self.ROUTES.get(path)
        if methods is None:
            raise HttpError(
                404,
                "not_found",
                f"no such path {path!r}: use POST /predict, POST /predict_proba, GET /health or GET /version",
            )
        endpoint = methods.get(method)
        if endpoint is None:
            allowed = ", ".join(methods)
            raise HttpError(405, "method_not_allowed", f"{path} accepts {allowed}", headers={"Allow": allowed})
        return getattr(self, endpoint)(request)

    # ---- endpoints ---------------------------------------------------------------------

    def _health(self, _request: _Request) -> tuple[int, bytes, dict[str, str]]:
        if self.state.stopping:
            return 503, _json({"status": "stopping"}), {}
        if self.state.model is None:
            return 503, _json({"status": "loading"}), {}
        return 200, _json({"status": "ok"}), {}

    def _version(self, _request: _Request) -> tuple[int, bytes, dict[str, str]]:
        return 200, _json(self._loaded().describe()), {}

    def _predict(self, request: _Request) -> tuple[int, bytes, dict[str, str]]:
        return self._call_model(request, "predict")

    def _predict_proba(self, request: _Request) -> tuple[int, bytes, dict[str, str]]:
        return self._call_model(request, "predict_proba")

    def _call_model(self, request: _Request, method: str) -> tuple[int, bytes, dict[str, str]]:
        loaded = self._loaded()
        if method not in loaded.methods:
            # The body is left unread: this connection cannot carry another request.
            raise HttpError(
                404,
                "method_not_available",
                f"the model has no {method}(); it has {', '.join(loaded.methods)}",
                close=True,
            )
        request.model_version = loaded.version_id
        try:
            batch = parse_request(request.read_body(self.config.max_body_bytes), loaded.inputs)
        except PayloadError as exc:
            raise HttpError(exc.status, exc.code, str(exc)) from None
        request.validated = True
        try:
            with self.predict_lock:
                raw = getattr(loaded.model, method)(batch.data)
            body = render(raw, batch, method)
        except Exception as exc:
            if isinstance(exc, ModelOutputError):
                log_event(logger, logging.ERROR, "predict_bad_output", str(exc), model_version_id=loaded.version_id)
            else:
                log_event(
                    logger,
                    logging.ERROR,
                    "predict_failed",
                    f"{method}() raised",
                    exc_info=True,
                    model_version_id=loaded.version_id,
                    method=method,
                )
            raise HttpError(500, "prediction_failed", "the model could not make a prediction") from None
        return 200, body, {}

    def _loaded(self) -> LoadedModel:
        loaded = self.state.model
        if loaded is None:
            raise HttpError(503, "model_not_loaded", "the model is still loading", headers={"Retry-After": "5"})
        return loaded


class _Answered(list):
    """A response body (one bytes item) whose ``close()`` writes the request's log line. WSGI
    servers call ``close()`` once the response is sent (PEP 3333); gunicorn, wsgiref and
    ``http11`` all do. Writing the line there keeps its cost (about a third of the server's own
    time per request) off the client's wait."""

    def __init__(self, body: bytes, on_close: Callable[[], None]):
        super().__init__((body,))
        self._on_close: Callable[[], None] | None = on_close

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


class _Request:
    """One request's body and what its log line needs."""

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.close = False
        self.model_version: str | None = None  # /predict with a model loaded
        self.validated = False  # the body was a valid /predict request: the model was asked

    def read_body(self, limit: int) -> bytes:
        environ = self.environ
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise HttpError(411, "length_required", "send the body with a Content-Length, not chunked", close=True)
        raw_length = environ.get("CONTENT_LENGTH")
        if raw_length is None or raw_length == "":
            raise HttpError(411, "length_required", "a Content-Length header is required", close=True)
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HttpError(
                400, "invalid_content_length", f"Content-Length {raw_length!r} is not a byte count", close=True
            ) from None
        if length > limit:
            raise HttpError(413, "body_too_large", f"the body is {length} bytes; the limit is {limit}", close=True)
        try:
            body = environ["wsgi.input"].read(length)
        except TimeoutError:
            raise HttpError(408, "request_timeout", "the request body did not arrive in time", close=True) from None
        if len(body) != length:
            raise HttpError(400, "incomplete_body", f"expected {length} bytes, got {len(body)}", close=True)
        return body


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode("utf-8")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, message: str) -> bytes:
    """A JSON error for a request the HTTP layer rejected before the application saw it."""
    code = _phrase(status).lower().replace(" ", "_")
    return _json({"error": code, "message": message or _phrase(status)})
