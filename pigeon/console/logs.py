"""Messaging logs: the filtered list (newest first, paged, live), its export, one message's page."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from pigeon.app import export as export_use
from pigeon.app import messages as message_use
from pigeon.app.diagnose_numbers import normalise
from pigeon.domain.status import Direction, MessageStatus
from pigeon.domain.urls import url_for_log
from pigeon.store import alerts as alert_store
from pigeon.store import messages as message_store
from pigeon.store import webhooks as webhook_store
from pigeon.store.messages import MessageFilter

from .auth import require
from .doctor import message_verdict
from .web import PAGE_SIZE, clean, console, day_end, day_start, format_datetime, parse_day, render, status_class

Row = dict[str, Any]

FILTERS = ("number", "status", "direction", "since", "until")
STATUSES = [str(s) for s in MessageStatus]
DIRECTIONS = [str(d) for d in Direction if d is not Direction.OUTBOUND_CALL]


@dataclass(frozen=True)
class LogQuery:
    """The filters of the logs page as given (to refill the form) and as a store filter."""

    given: dict[str, str]
    filter: MessageFilter

    @property
    def query_string(self) -> str:
        return urlencode(self.given)


def log_query(account_sid: str, params: Mapping[str, str]) -> LogQuery:
    given = clean(params, *FILTERS)
    number = given.get("number")
    status = given.get("status") if given.get("status") in STATUSES else None
    direction = given.get("direction") if given.get("direction") in DIRECTIONS else None
    since, until = parse_day(given.get("since")), parse_day(given.get("until"))
    f = MessageFilter(
        account_sid=account_sid,
        number=normalise(number) if number else None,  # as the doctor reads it
        status=status,
        direction=direction,
        created_since=day_start(since) if since else None,
        created_before=day_end(until) if until else None,
    )
    return LogQuery(given, f)


def _page(conn: Any, f: MessageFilter, after: str | None, before: str | None) -> tuple[list[Row], bool, bool]:
    """(rows, has_newer, has_older) for one page, by keyset cursor."""
    cursor_sid = after or before
    cursor_row = message_store.get_message(conn, cursor_sid, account_sid=f.account_sid) if cursor_sid else None
    cursor = (cursor_row["date_created"], cursor_row["sid"]) if cursor_row else None
    if cursor and before:
        rows = message_store.list_messages(conn, f, limit=PAGE_SIZE + 1, before=cursor)
        return rows[-PAGE_SIZE:], len(rows) > PAGE_SIZE, True
    rows = message_store.list_messages(conn, f, limit=PAGE_SIZE + 1, after=cursor)
    return rows[:PAGE_SIZE], cursor is not None, len(rows) > PAGE_SIZE


async def logs_page(request: Request) -> Response:
    session = await require(request)
    q = log_query(session.account_sid, request.query_params)
    after, before = request.query_params.get("after"), request.query_params.get("before")
    rows, has_newer, has_older = await console(request).history(_page, q.filter, after, before)
    return render(
        request,
        "logs.html",
        rows=rows,
        q=q,
        statuses=STATUSES,
        directions=DIRECTIONS,
        newer=rows[0]["sid"] if has_newer and rows else None,
        older=rows[-1]["sid"] if has_older and rows else None,
        live=not (after or before),
    )


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "sid": row["sid"],
        "date_created": format_datetime(row["date_created"]),
        "direction": row["direction"],
        "from": row["from_"] or "",
        "to": row["to"],
        "status": row["status"],
        "status_class": status_class(row["status"]),
        "error_code": row["error_code"],
        "body": (row["body"] or "")[:80],
    }


async def logs_json(request: Request) -> Response:
    """The first page of the filtered logs, for the page's live refresh."""
    session = await require(request)
    q = log_query(session.account_sid, request.query_params)
    rows, _, _ = await console(request).history(_page, q.filter, None, None)
    return JSONResponse({"messages": [row_json(r) for r in rows]}, headers={"Cache-Control": "no-store"})


# -- export -----------------------------------------------------------------------------------


async def export(request: Request) -> Response:
    """Every message matching the filters, with its timeline, streamed batch by batch as CSV or
    JSON (pigeon.app.export: the same records as `pigeon logs export`)."""
    session = await require(request)
    q = log_query(session.account_sid, request.query_params)
    fmt = "json" if request.query_params.get("format") == "json" else "csv"
    c = console(request)

    def records() -> Iterator[dict[str, Any]]:
        # A sync generator: StreamingResponse pulls it in a worker thread, one batch a read.
        cursor: export_use.Cursor | None = None
        while True:
            with c.db.history() as conn:
                batch, cursor = export_use.export_batch(conn, q.filter, after=cursor)
            yield from batch
            if cursor is None:
                return

    body = export_use.render(fmt, records(), exported_at=c.clock.now(), filters=export_use.filter_view(q.filter))
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="pigeon-messages.{fmt}"'}
    )


# -- one message ------------------------------------------------------------------------------

#: Timeline entries that a webhook delivery wrote.
_DELIVERY_KINDS = frozenset({"callback", "callback_failed", "webhook", "webhook_failed"})


def _message_view(conn: Any, account_sid: str, sid: str, path: str, now: datetime) -> dict[str, Any]:
    message = message_use.fetch(conn, account_sid, sid, path)
    if message.get("status_callback"):  # the URL it is sent to, password and all: shown masked
        message["status_callback"] = url_for_log(message["status_callback"])
    deliveries = webhook_store.list_deliveries(conn, message_sid=sid)
    attempts = webhook_store.list_attempts(conn, message_sid=sid)
    for d in deliveries:
        d["attempt_rows"] = [a for a in attempts if a["delivery_id"] == d["id"]]
        # The outbox keeps the URL it sends to, password and all; the page shows it masked.
        d["url"] = url_for_log(d["url"])
        d["fallback_url"] = url_for_log(d["fallback_url"]) if d.get("fallback_url") else None
    events = message_store.list_events(conn, sid, account_sid=account_sid)
    return {
        "message": message,
        "events": events,
        "media": message_store.list_media(conn, sid),
        "deliveries": deliveries,
        # Finished deliveries go after PIGEON_WEBHOOK_HISTORY_DAYS; the timeline keeps their outcomes.
        "deliveries_removed": not deliveries and any(e["kind"] in _DELIVERY_KINDS for e in events),
        "alerts": alert_store.list_alerts(conn, account_sid=account_sid, resource_sid=sid, limit=20),
        "verdict": message_verdict(conn, account_sid, sid, now),
    }


async def message_page(request: Request) -> Response:
    session = await require(request)
    sid = request.path_params["sid"]
    c = console(request)
    view = await c.read(_message_view, session.account_sid, sid, request.url.path, c.clock.now())
    return render(request, "message.html", **view)
