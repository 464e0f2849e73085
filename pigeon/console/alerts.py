"""The error log: alerts of asynchronous failures (carrier, webhook, TwiML, inbound routing)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from pigeon.domain.errors import ApiError
from pigeon.store import alerts as alert_store

from .auth import require
from .web import PAGE_SIZE, clean, console, day_start, parse_day, render, whole_number


def _page_number(raw: str | None) -> int:
    """The page asked for; past the last one the page is empty, and one past what a filter
    field takes (`whole_number`) is the first."""
    return whole_number(raw) or 0


async def alerts_page(request: Request) -> Response:
    session = await require(request)
    given = clean(request.query_params, "code", "resource", "since")
    code = given.get("code")
    since = parse_day(given.get("since"))
    page = _page_number(request.query_params.get("page"))
    rows = await console(request).history(
        lambda conn: alert_store.list_alerts(
            conn,
            account_sid=session.account_sid,
            resource_sid=given.get("resource"),
            error_code=whole_number(code),
            since=day_start(since) if since else None,
            limit=PAGE_SIZE + 1,
            offset=page * PAGE_SIZE,
        )
    )
    return render(
        request,
        "alerts.html",
        rows=rows[:PAGE_SIZE],
        given=given,
        query=urlencode(given),
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


async def alert_page(request: Request) -> Response:
    session = await require(request)
    sid = request.path_params["sid"]

    def load(conn: Any) -> dict[str, Any]:
        row = alert_store.get_alert(conn, sid, account_sid=session.account_sid)
        if row is None:
            raise ApiError(20404, f"No alert {sid} on this account.", status=404)
        return row

    return render(request, "alert.html", alert=await console(request).read(load))
