"""Logging: plain or JSON lines, with the request id of the current request on every record.

One access line per request, written by :class:`app.core.middleware.RequestContextMiddleware`
(method, path without the query, status, duration): uvicorn's own access log is switched off
here too, not only by ``--no-access-log``, because its line repeats the request with the query
string. Values a caller chooses freely (a username) enter a log line only through
:func:`short`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_SECRET_KEYS = ("password", "token", "authorization", "apikey", "secret", "key")


def short(value: str, limit: int = 32) -> str:
    """``value`` for a log line: quoted, cut to its first ``limit`` characters and followed by
    its length when longer (a 900 KB username must not bloat the log)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} chars)"


class RequestIdFilter(logging.Filter):
    """Attach the current request id (or '-') to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given with ``extra={...}`` are included."""

    _skip = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in self._skip or key.startswith("_"):
                continue
            lowered = key.lower()
            if any(word in lowered for word in _SECRET_KEYS):
                value = "***"
            payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Configure the root logger once (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_quant_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._quant_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
    # uvicorn configures its own loggers before it imports the app: route them through this
    # handler too, so a JSON deployment emits JSON only.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    # The service writes the one access line per request itself; uvicorn's (on unless started
    # with --no-access-log) would log every request twice, with its query string.
    logging.getLogger("uvicorn.access").disabled = True
