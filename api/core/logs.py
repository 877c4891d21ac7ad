"""Structured logs: one JSON object per line on standard error, with the request id that a job carries into its
worker, so that one request can be followed from the HTTP call through the queue to the solver process."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

# Attributes every LogRecord has; anything else on a record (logger.info(..., extra={...})) is logged as a field.
# uvicorn's color_message repeats the message with terminal colours.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, request and job ids, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("job_id", job_id)):
            value = getattr(record, name, None) or var.get()
            if value is not None:
                line[name] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send every logger's records to standard error, as JSON lines (fmt 'json') or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "procrastinate"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
