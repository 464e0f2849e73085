"""The request log: every API call, newest first, with filters (no bodies, no credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from pigeon.app.diagnose_numbers import logged_spellings, normalise
from pigeon.store import request_log as request_store
from pigeon.store.request_log import RequestFilter

from .auth import require
from .web import PAGE_SIZE, clean, console, day_end, day_start, parse_day, render, whole_number

Row = dict[str, Any]
FILTERS = ("number", "status", "code", "resource", "since", "until", "unauthenticated")


def request_filter(account_sid: str, given: Mapping[str, str]) -> RequestFilter:
    """The page's filters for the store. A number is read as the doctor reads it (a '+' that
    arrived as a space, digits without it) and found in every spelling the log may hold."""
    number = given.get("number")
    since, until = parse_day(given.get("since")), parse_day(given.get("until"))
    return RequestFilter(
        account_sid=account_sid,
        to=tuple(logged_spellings(normalise(number), number)) if number else None,
        status=whole_number(given.get("status")),
        error_code=whole_number(given.get("code")),
        resource_sid=given.get("resource"),
        since=day_start(since) if since else None,
        until=day_end(until) if until else None,
        # The requests that only named the account: their credentials refused or never checked.
        authenticated=given.get("unauthenticated") != "1",
    )


def _page(conn: Any, f: RequestFilter, after: str | None, before: str | None) -> tuple[list[Row], bool, bool]:
    cursor_sid = after or before
    row = request_store.get_request(conn, cursor_sid, account_sid=f.account_sid) if cursor_sid else None
    cursor = (row["at"], row["id"]) if row else None
    if cursor and before:
        rows = request_store.list_requests(conn, f, limit=PAGE_SIZE + 1, before=cursor)
        return rows[-PAGE_SIZE:], len(rows) > PAGE_SIZE, True
    rows = request_store.list_requests(conn, f, limit=PAGE_SIZE + 1, after=cursor)
    return rows[:PAGE_SIZE], cursor is not None, len(rows) > PAGE_SIZE


async def requests_page(request: Request) -> Response:
    session = await require(request)
    given = clean(request.query_params, *FILTERS)
    f = request_filter(session.account_sid, given)
    after, before = request.query_params.get("after"), request.query_params.get("before")
    rows, has_newer, has_older = await console(request).history(_page, f, after, before)
    return render(
        request,
        "requests.html",
        rows=rows,
        given=given,
        filters_query=urlencode(given),
        newer=rows[0]["sid"] if has_newer and rows else None,
        older=rows[-1]["sid"] if has_older and rows else None,
    )
