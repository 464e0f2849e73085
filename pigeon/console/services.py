"""Messaging Services with their sender pools, and the opt-out list (with its export)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from pigeon.app import optouts as optout_use
from pigeon.app import services as service_use

from .auth import require
from .web import PAGE_SIZE, clean, console, render, whole_number

Row = dict[str, Any]
MAX = 400  # a pool holds at most 400 senders (pigeon.app.services.MAX_POOL_SIZE)


def _services(conn: Any, account_sid: str) -> list[Row]:
    rows = service_use.list_for_account(conn, account_sid, offset=0, limit=1000)
    for row in rows:
        row["numbers"] = service_use.list_numbers(conn, account_sid, row["sid"], short_codes=False, offset=0, limit=MAX)
        row["short_codes"] = service_use.list_numbers(
            conn, account_sid, row["sid"], short_codes=True, offset=0, limit=MAX
        )
        row["alpha_senders"] = service_use.list_alpha_senders(conn, account_sid, row["sid"], offset=0, limit=MAX)
    return rows


async def services_page(request: Request) -> Response:
    session = await require(request)
    rows = await console(request).read(_services, session.account_sid)
    return render(request, "services.html", rows=rows)


async def service_page(request: Request) -> Response:
    session = await require(request)
    sid = request.path_params["sid"]

    def load(conn: Any) -> Row:
        row = service_use.fetch(conn, session.account_sid, sid, request.url.path)
        row["numbers"] = service_use.list_numbers(
            conn, session.account_sid, sid, short_codes=False, offset=0, limit=MAX
        )
        row["short_codes"] = service_use.list_numbers(
            conn, session.account_sid, sid, short_codes=True, offset=0, limit=MAX
        )
        row["alpha_senders"] = service_use.list_alpha_senders(conn, session.account_sid, sid, offset=0, limit=MAX)
        return row

    return render(request, "service.html", service=await console(request).read(load))


async def optouts_page(request: Request) -> Response:
    """The opt-outs, newest first, a page at a time (as the error log pages): a list that only
    grows must not stop silently at some length."""
    session = await require(request)
    given = clean(request.query_params, "recipient", "sender")
    page = whole_number(request.query_params.get("page")) or 0
    rows = await console(request).read(
        lambda conn: optout_use.list_for_account(
            conn,
            session.account_sid,
            recipient=given.get("recipient"),
            sender=given.get("sender"),
            offset=page * PAGE_SIZE,
            limit=PAGE_SIZE + 1,
        )
    )
    return render(
        request,
        "optouts.html",
        rows=[optout_use.view(r) for r in rows[:PAGE_SIZE]],
        given=given,
        query=urlencode(given),
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


async def optouts_export(request: Request) -> Response:
    session = await require(request)
    rows = await console(request).read(lambda conn: optout_use.list_for_account(conn, session.account_sid))
    if request.query_params.get("format") == "json":
        body, media, ext = json.dumps([optout_use.view(r) for r in rows], indent=2) + "\n", "application/json", "json"
    else:
        body, media, ext = optout_use.to_csv(rows), "text/csv; charset=utf-8", "csv"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="opt-outs.{ext}"'})
