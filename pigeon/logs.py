"""Structured logs: one JSON object per line on standard error. Configured by entry points only.

Fields passed with ``extra=`` become keys of the object. Keys that could carry a secret are
masked wherever they appear, so a careless ``extra={"password": ...}`` never reaches a log; a
URL field (``url``, ``*_url``) loses any password it holds (pigeon.domain.urls.url_for_log, which
log calls that put a URL in the message itself use).

uvicorn's loggers (``uvicorn.error``: malformed requests, shutdown) go through the same
handler: `pigeon.serving.uvicorn_config` gives uvicorn no logging configuration of its own.
An error that the API's handler has already logged (`mark_logged`) is not logged a second
time by uvicorn, which Starlette hands every unhandled error to after the 500 is sent; the
requests uvicorn cuts off once the shutdown grace is over are one warning, not errors with
tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pigeon.domain.urls import url_for_log

SECRET_KEYS = frozenset({"password", "auth_token", "secret", "authorization", "token", "api_key_secret"})
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _mask(key: str, value: Any) -> Any:
    name = key.lower()
    # Names such as tls_key_password or client_secret too, not only the exact ones.
    if name in SECRET_KEYS or name.endswith(("password", "secret")):
        return "***"
    if (name == "url" or name.endswith("_url")) and isinstance(value, str):
        return url_for_log(value)
    return value


_LOGGED = "_pigeon_logged"


def mark_logged(exc: BaseException) -> None:
    """Note that `exc` has been logged with its traceback, so that the server's own report of
    it (uvicorn's "Exception in ASGI application") is left out."""
    setattr(exc, _LOGGED, True)


#: What uvicorn says, at error, when requests outlast the shutdown grace and it cancels them...
_GRACE_EXCEEDED = "Cancel %s running task(s), timeout graceful shutdown exceeded"
#: ...and the message of the CancelledError each of them then ends with.
_GRACE_CANCEL = "Task cancelled, timeout graceful shutdown exceeded"


class _UvicornRecords(logging.Filter):
    """On uvicorn's own logger: drops a record whose exception was logged already
    (`mark_logged`), and makes the cut-off of requests past PIGEON_SHUTDOWN_GRACE_SECONDS,
    which is documented behaviour, one warning saying how many were cut off. uvicorn logged
    it as an error, followed by an error "Exception in ASGI application" with a CancelledError
    traceback for each request, as if something had gone wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if getattr(exc, _LOGGED, False):
            return False
        if isinstance(exc, asyncio.CancelledError) and exc.args == (_GRACE_CANCEL,):
            return False
        if record.msg == _GRACE_EXCEEDED and len(record.args or ()) == 1:
            (count,) = record.args  # type: ignore[misc]
            record.msg = "shutdown grace period over: %s request(s) still in progress were cut off"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.requests_cut_off = count
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            # `pigeon serve --workers N` and --api-processes write to one standard error:
            # the process id says which of them a line comes from.
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _mask(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Migrations announce every step at INFO; the operator needs only problems.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at info with its full URL: one line per status callback, and
    # a callback URL may carry credentials (https://user:secret@host/...). Pigeon records its
    # own attempts, without secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # On the logger, not the handler: a filter there sees only uvicorn's own records.
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.filters[:] = [f for f in uvicorn.filters if not isinstance(f, _UvicornRecords)]
    uvicorn.addFilter(_UvicornRecords())
