"""Pigeon additions under /2010-04-01 for the debugger: the request log and message export.

GET /2010-04-01/Accounts/{AccountSid}/Requests.json            the account's API requests
    filters To, From, Status (HTTP), ErrorCode, StartDate, EndDate, Since (15m, 2h, 1d or
    an ISO date-time); newest first; Twilio's 2010 paging (PageSize, Page, PageToken)
GET /2010-04-01/Accounts/{AccountSid}/Requests/{Sid}.json      one request
GET /2010-04-01/Accounts/{AccountSid}/Messages/Export.json     messages with their timelines
GET /2010-04-01/Accounts/{AccountSid}/Messages/Export.csv      the same as CSV
    with the list filters of Messages.json (To, From, DateSent, DateSent<, DateSent>)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, in_thread
from pigeon.api.messages import _message_filter
from pigeon.api.paging import Cursor, PageRequest, envelope, page_token, parse_page
from pigeon.api.query import flag_param, moment, since, whole_number
from pigeon.api.schemas import V, rfc2822
from pigeon.app import export
from pigeon.domain import periods
from pigeon.domain.errors import NotFound
from pigeon.domain.sids import Prefix, is_sid
from pigeon.store.request_log import RequestFilter, get_request, list_requests

JSON = "application/json; charset=utf-8"


def request_json(row: dict[str, Any]) -> dict[str, Any]:
    account = row["account_sid"] or row.get("claimed_account_sid")
    return {
        "sid": row["sid"],
        "account_sid": account,
        # False: the request only named the account; its credentials were refused or never checked.
        "authenticated": row["account_sid"] is not None,
        "date_created": rfc2822(row["at"]),
        "method": row["method"],
        "path": row["path"],
        "status": row["status"],
        "error_code": row["error_code"],
        "resource_sid": row["resource_sid"],
        "source_ip": row["source_ip"],
        "user_agent": row["user_agent"],
        "idempotency_key": row["idempotency_key"],
        "duration_ms": round(row["duration_ms"], 2),
        "to": row["to"],
        "from": row["from_"],
        "content_hash": row["content_hash"],
        "uri": f"{V}/Accounts/{account}/Requests/{row['sid']}.json",
    }


def request_filter(
    account_sid: str, params: dict[str, str], now: datetime
) -> tuple[RequestFilter, list[tuple[str, str]]]:
    kept = [(name, params[name]) for name in ("To", "From", "Status", "ErrorCode", "Authenticated") if params.get(name)]
    start: datetime | None = None
    until: datetime | None = None
    if params.get("StartDate"):
        start = moment("StartDate", params["StartDate"])[0]
        kept.append(("StartDate", params["StartDate"]))
    if params.get("Since"):
        start = max(start or periods.EARLIEST, since("Since", params["Since"], now))
        kept.append(("Since", params["Since"]))
    if params.get("EndDate"):
        value, whole_day = moment("EndDate", params["EndDate"])
        until = periods.end_of(value, whole_day=whole_day)
        kept.append(("EndDate", params["EndDate"]))
    f = RequestFilter(
        account_sid=account_sid,
        to=params.get("To") or None,
        from_=params.get("From") or None,
        status=whole_number(params, "Status"),
        error_code=whole_number(params, "ErrorCode"),
        since=start,
        until=until,
        authenticated=flag_param(params, "Authenticated", default=True),
    )
    return f, kept


def _request_page(conn: Any, f: RequestFilter, req: PageRequest, kept: list[tuple[str, str]], path: str) -> Any:
    cursor = req.cursor
    place = _place(conn, cursor, f.account_sid)
    if place and cursor and cursor.backward:
        rows = list_requests(conn, f, limit=req.page_size + 1, before=place)
        has_next, has_prev = True, len(rows) > req.page_size
        rows = rows[-req.page_size :]
    else:
        rows = list_requests(conn, f, limit=req.page_size + 1, after=place, offset=0 if place else req.offset)
        has_next, has_prev = len(rows) > req.page_size, req.page > 0
        rows = rows[: req.page_size]
    return envelope(
        "requests",
        [request_json(r) for r in rows],
        path=path,
        filters=kept,
        req=req,
        next_token=_token(rows[-1], backward=False) if has_next and rows else None,
        previous_token=_token(rows[0], backward=True) if has_prev and rows else None,
    )


def _token(row: dict[str, Any], *, backward: bool) -> str:
    return page_token(backward=backward, sid=row["sid"], at=row["at"], tie=row["id"])


def _place(conn: Any, cursor: Cursor | None, account_sid: str | None) -> tuple[datetime, int] | None:
    """The (at, id) a page is sought from: the token's own, or for a token without them
    (handed out before tokens carried the place) the request's, while it is kept."""
    if cursor is None:
        return None
    if cursor.at is not None and cursor.tie is not None:
        return cursor.at, cursor.tie
    row = get_request(conn, cursor.sid, account_sid=account_sid)
    return (row["at"], row["id"]) if row else None


async def requests_list(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)
    f, kept = request_filter(account_sid, params, c.clock.now())

    def page() -> Any:
        with c.db.history() as conn:
            return _request_page(conn, f, req, kept, request.url.path)

    return JSONResponse(await in_thread(page), media_type=JSON)


async def requests_fetch(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)
    if not is_sid(sid, Prefix.REQUEST):
        raise NotFound(request.url.path)

    def run() -> Any:
        with c.db.read() as conn:
            return get_request(conn, sid, account_sid=account_sid)

    row = await in_thread(run)
    if row is None:
        raise NotFound(request.url.path)
    return JSONResponse(request_json(row), media_type=JSON)


async def messages_export(request: Request) -> Response:
    account_sid, fmt = request.path_params["account_sid"], request.path_params["format"]
    await authorized_account(request, account_sid)
    if fmt not in export.FORMATS:
        raise NotFound(request.url.path)
    f, _ = _message_filter(account_sid, dict(request.query_params))
    c = ctx(request)
    now = c.clock.now()
    out = export.formatter(fmt, exported_at=now, filters=export.filter_view(f))

    def batch(after: export.Cursor | None) -> tuple[list[dict[str, Any]], export.Cursor | None]:
        with c.db.history() as conn:
            return export.export_batch(conn, f, after=after)

    # The first batch is read before the response starts: a store error is then still an
    # error response, not a cut-off document.
    first, cursor = await in_thread(batch, None)

    async def body() -> AsyncIterator[str]:
        nonlocal cursor
        yield out.head() + "".join(out.item(r) for r in first)
        while cursor is not None:
            records, cursor = await in_thread(batch, cursor)
            yield "".join(out.item(r) for r in records)
        yield out.tail()

    name = f"messages-{now:%Y%m%dT%H%M%SZ}.{fmt}"
    return StreamingResponse(
        body(), media_type=out.media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


BASE = V + "/Accounts/{account_sid}"
#: Messages/Export.* must come before Messages/{sid}.json in the route list.
routes = [
    Route(BASE + "/Requests.json", requests_list, methods=["GET"]),
    Route(BASE + "/Requests/{sid}.json", requests_fetch, methods=["GET"]),
    Route(BASE + "/Messages/Export.{format}", messages_export, methods=["GET"]),
]
