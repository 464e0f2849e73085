"""Structured logs are JSON, carry extra fields and never a secret."""

from __future__ import annotations

import json
import logging

from pigeon.logs import JsonFormatter


def test_json_lines_with_extra_fields_and_masked_secrets() -> None:
    record = logging.LogRecord("pigeon.x", logging.WARNING, __file__, 1, 'said "%s"', ("hi",), None)
    record.sid = "SM1"
    record.password = "hunter2"
    record.tls_key_password = "open sesame"
    record.client_secret = "s3"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == 'said "hi"' and entry["level"] == "warning" and entry["sid"] == "SM1"
    assert entry["password"] == "***" and "hunter2" not in line
    assert entry["tls_key_password"] == entry["client_secret"] == "***"
    assert entry["pid"] == record.process  # which of pigeon serve's processes said it


def test_a_url_field_never_carries_a_password() -> None:
    """A careless extra={"url": ...} with credentials in the URL is caught like a password field."""
    record = logging.LogRecord("pigeon.x", logging.WARNING, __file__, 1, "failed", (), None)
    record.url = "https://user:s3cret@hooks.example.com/status"
    record.fallback_url = "https://t0ken@hooks.example.com/fallback"
    record.attempts = 3
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["url"] == "https://user:***@hooks.example.com/status"
    assert entry["fallback_url"] == "https://***@hooks.example.com/fallback"
    assert "s3cret" not in line and "t0ken" not in line and entry["attempts"] == 3


def test_an_error_logged_by_the_api_is_not_logged_again_by_uvicorn() -> None:
    """Starlette hands an unhandled error on to uvicorn after the API's handler has logged it
    (and answered 500): uvicorn's copy is dropped, its other lines are kept."""
    from pigeon import logs

    logs.configure("info")
    uvicorn = logging.getLogger("uvicorn.error")
    logged, other = RuntimeError("logged"), RuntimeError("not logged")
    logs.mark_logged(logged)

    def record(exc: BaseException) -> logging.LogRecord:
        return uvicorn.makeRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception", (), (type(exc), exc, None))

    assert not uvicorn.filter(record(logged))
    assert uvicorn.filter(record(other))
    logs.configure("info")  # configuring again does not pile up filters
    assert len(uvicorn.filters) == 1


def test_requests_cut_off_after_the_shutdown_grace_are_one_warning() -> None:
    """uvicorn logs the cut-off as an error and each request's CancelledError with its
    traceback; the cut-off is what PIGEON_SHUTDOWN_GRACE_SECONDS is for."""
    import asyncio

    from pigeon import logs

    logs.configure("info")
    uvicorn = logging.getLogger("uvicorn.error")
    said = uvicorn.makeRecord(
        "uvicorn.error",
        logging.ERROR,
        __file__,
        1,
        "Cancel %s running task(s), timeout graceful shutdown exceeded",
        (3,),
        None,
    )
    assert uvicorn.filter(said)
    assert (said.levelname, said.getMessage()) == (
        "WARNING",
        "shutdown grace period over: 3 request(s) still in progress were cut off",
    )
    cut = asyncio.CancelledError("Task cancelled, timeout graceful shutdown exceeded")
    other = asyncio.CancelledError()
    for exc, kept in ((cut, False), (other, True)):
        record = uvicorn.makeRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n", (), (type(exc), exc, None)
        )
        assert uvicorn.filter(record) is kept
