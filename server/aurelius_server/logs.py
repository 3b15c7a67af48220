"""Structured logs: one JSON object per line on stdout.

Every line has ``ts`` (UTC), ``level``, ``logger``, ``event`` (a stable name to filter on) and
``message``, plus the event's own fields. Library loggers (botocore) go through the same
handler, so nothing reaches stdout or stderr as plain text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "aurelius_server"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (a test's capture, a redirected fd)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    @property  # type: ignore[override]
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


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
