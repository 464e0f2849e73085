"""/2010-04-01/Accounts/{AccountSid}/OptOuts: the recipients who opted out (a Pigeon addition).

Each entry says which pair (or Messaging Service) it blocks, the keyword, when, and the
inbound message that caused it. `OptOuts.csv` exports the same list.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V
from pigeon.app import optouts as use


async def list_(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.list_for_account(
                conn,
                account_sid,
                recipient=params.get("Recipient"),
                sender=params.get("Sender"),
                offset=req.offset,
                limit=req.page_size + 1,
            )

    rows = await in_thread(run)
    filters = [(k, params[k]) for k in ("Recipient", "Sender") if params.get(k)]
    body = offset_envelope("opt_outs", [use.view(r) for r in rows], path=request.url.path, filters=filters, req=req)
    return JSONResponse(body, media_type="application/json; charset=utf-8")


async def export(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> str:
        with c.db.read() as conn:
            return use.to_csv(use.list_for_account(conn, account_sid))

    return Response(
        await in_thread(run),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="opt-outs.csv"'},
    )


routes = [
    Route(V + "/Accounts/{account_sid}/OptOuts.json", list_, methods=["GET"]),
    Route(V + "/Accounts/{account_sid}/OptOuts.csv", export, methods=["GET"]),
]
