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
