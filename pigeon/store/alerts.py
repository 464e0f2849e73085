"""Alerts: the error log of asynchronous failures (carrier, webhook, TwiML, inbound routing).

An alert read from here (`list_alerts`, `get_alert`, `shown`) never shows a webhook URL's
password: its writers mask it (pigeon.domain.urls), and rows stored before they did are
masked on the way out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.urls import mask_credentials, mask_credentials_in, url_for_log
from pigeon.store.tables import alerts

Row = dict[str, Any]


def alert_row(
    *,
    account_sid: str,
    error_code: int,
    text: str,
    at: datetime,
    resource_sid: str | None = None,
    log_level: str = "error",
    request_method: str | None = None,
    request_url: str | None = None,
    request_variables: Mapping[str, Any] | list[Any] | None = None,
    response_status: int | None = None,
    response_body: str | None = None,
    response_headers: Mapping[str, str] | None = None,
) -> Row:
    """A new alert as a row, for writers that insert it with other rows (group commit)."""
    return {
        "sid": new_sid(Prefix.ALERT),
        "account_sid": account_sid,
        "error_code": error_code,
        "log_level": log_level,
        "resource_sid": resource_sid,
        "alert_text": text,
        "request_method": request_method,
        "request_url": request_url,
        "request_variables": request_variables,
        "response_status": response_status,
        "response_body": response_body,
        "response_headers": dict(response_headers) if response_headers else None,
        "date_created": at,
    }


def add_alert(
    conn: Connection,
    *,
    account_sid: str,
    error_code: int,
    text: str,
    at: datetime,
    resource_sid: str | None = None,
    log_level: str = "error",
    request_method: str | None = None,
    request_url: str | None = None,
    request_variables: Mapping[str, Any] | list[Any] | None = None,
    response_status: int | None = None,
    response_body: str | None = None,
    response_headers: Mapping[str, str] | None = None,
) -> str:
    row = alert_row(
        account_sid=account_sid,
        error_code=error_code,
        text=text,
        at=at,
        resource_sid=resource_sid,
        log_level=log_level,
        request_method=request_method,
        request_url=request_url,
        request_variables=request_variables,
        response_status=response_status,
        response_body=response_body,
        response_headers=response_headers,
    )
    conn.execute(alerts.insert().values(**row))
    return str(row["sid"])


def shown(row: Mapping[Any, Any]) -> Row:
    """An alert row as it leaves the store: the password of a URL in its text, its request URL
    and its request variables (a fallback's ErrorUrl) masked."""
    out = dict(row)
    out["alert_text"] = mask_credentials(out["alert_text"])
    if out.get("request_url"):
        out["request_url"] = url_for_log(out["request_url"])
    if out.get("request_variables"):
        out["request_variables"] = mask_credentials_in(out["request_variables"])
    return out


def set_request_variables(conn: Connection, sid: str, variables: Mapping[str, Any] | list[Any] | None) -> None:
    """Replace the request variables an alert keeps (a redacted message's text)."""
    conn.execute(alerts.update().where(alerts.c.sid == sid).values(request_variables=variables))


def list_alerts(
    conn: Connection,
    *,
    account_sid: str | None = None,
    resource_sid: str | None = None,
    error_code: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    log_level: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Row]:
    """Newest first. `since` is inclusive, `until` exclusive; `log_level` ignores case."""
    q = sa.select(alerts).order_by(alerts.c.date_created.desc(), alerts.c.sid.desc())
    if account_sid is not None:
        q = q.where(alerts.c.account_sid == account_sid)
    if resource_sid is not None:
        q = q.where(alerts.c.resource_sid == resource_sid)
    if error_code is not None:
        q = q.where(alerts.c.error_code == error_code)
    if since is not None:
        q = q.where(alerts.c.date_created >= since)
    if until is not None:
        q = q.where(alerts.c.date_created < until)
    if log_level is not None:
        q = q.where(alerts.c.log_level == log_level.lower())
    return [shown(r) for r in conn.execute(q.limit(limit).offset(offset)).mappings()]


def get_alert(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(alerts).where(alerts.c.sid == sid)
    if account_sid is not None:
        q = q.where(alerts.c.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return shown(row) if row else None


_INSERT_ALERTS = alerts.insert()


def add_alerts(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert many alerts made with `alert_row`, with one executemany."""
    if rows:
        conn.execute(_INSERT_ALERTS, list(rows))
