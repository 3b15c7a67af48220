"""Structured logs: one JSON object per line on stdout.

Every line has ``ts`` (UTC), ``level``, ``logger``, ``event`` (a stable name to filter on) and
``message``, plus the event's own fields. Library loggers (botocore) go through the same
handler, so nothing reaches stdout or stderr as plain text.

The one line per request (``wsgi``) is written by ``log_info_line``: the same JSON, without
the logging machinery (a LogRecord, the caller's frame, the handler's lock), which is about
two thirds of the cost of a ``logging`` call and would be paid at every request.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson

LOGGER_NAME = "aurelius_server"

# orjson writes a line in a quarter of the standard library's time (the request line at every
# request); the standard encoder, made once, takes what orjson refuses (an int over 64 bits, a
# key that is not a string).
_LINE_ENCODER = json.JSONEncoder(default=str)
# Both ways of writing a line take this lock: lines from threads (the loading responder's, the
# model loader's) never interleave. No signal handler may write a line: it would run in the
# thread it interrupted, which may hold this lock (workers.ModelWorker.handle_exit).
_WRITE_LOCK = threading.Lock()


def json_line(
    created: float,
    level: str,
    logger_name: str,
    event: str,
    message: str,
    fields: dict[str, Any],
    exception: str | None = None,
) -> str:
    """One log line (without its newline)."""
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": logger_name,
        "event": event,
        "message": message,
    }
    entry.update(fields)
    if exception is not None:
        entry["exception"] = exception
    try:
        return orjson.dumps(entry, default=_as_json).decode()
    except TypeError:
        return _LINE_ENCODER.encode(entry)


def _as_json(value: Any) -> Any:
    """What orjson does not write itself: a float subclass (numpy.float64) stays a number, as the
    standard encoder writes it; anything else becomes its str()."""
    return float(value) if isinstance(value, float) else str(value)


def _write(line: str) -> None:
    with _WRITE_LOCK:
        stream = sys.stdout  # whatever it is at the time (a test's capture, a redirected fd)
        stream.write(line + "\n")
        stream.flush()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json_line(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "event", None) or "log",
            record.getMessage(),
            getattr(record, "fields", None) or {},
            self.formatException(record.exc_info) if record.exc_info else None,
        )


class StdoutHandler(logging.Handler):
    """Writes each record as one JSON line to ``sys.stdout``."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(level: int = logging.INFO) -> logging.Logger:
    """Route the root logger to one JSON handler on stdout (idempotent)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdoutHandler)]:
        root.removeHandler(handler)
    root.addHandler(StdoutHandler())
    root.setLevel(level)
    return logging.getLogger(LOGGER_NAME)


def log_event(
    logger: logging.Logger, level: int, event: str, message: str, exc_info: bool = False, **fields: Any
) -> None:
    logger.log(level, message, exc_info=exc_info, extra={"event": event, "fields": fields})


def log_info_line(logger: logging.Logger, event: str, message: str, fields: dict[str, Any]) -> None:
    """``log_event(logger, INFO, event, message, **fields)`` written straight to stdout, when the
    logger is enabled for INFO. For a line written at every request; nothing else needs it."""
    if logger.isEnabledFor(logging.INFO):
        _write(json_line(time.time(), "INFO", logger.name, event, message, fields))
