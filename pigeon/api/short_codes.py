"""/2010-04-01/Accounts/{AccountSid}/SMS/ShortCodes: the account's short codes (list, fetch, update)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, first, form, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V
from pigeon.api.service_schemas import short_code_json
from pigeon.app import short_codes as use

JSON = "application/json; charset=utf-8"


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
                short_code=params.get("ShortCode"),
                friendly_name=params.get("FriendlyName"),
                offset=req.offset,
                limit=req.page_size + 1,
            )

    rows = await in_thread(run)
    filters = [(k, params[k]) for k in ("FriendlyName", "ShortCode") if params.get(k)]
    body = offset_envelope(
        "short_codes", [short_code_json(r) for r in rows], path=request.url.path, filters=filters, req=req
    )
    return JSONResponse(body, media_type=JSON)


async def fetch(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.fetch(conn, account_sid, sid, request.url.path)

    return JSONResponse(short_code_json(await in_thread(run)), media_type=JSON)


async def update(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    params = first(await form(request))
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return use.update(conn, account_sid, sid, request.url.path, params, c.clock.now())

    return JSONResponse(short_code_json(await in_thread(run)), media_type=JSON)


BASE = V + "/Accounts/{account_sid}/SMS/ShortCodes"
routes = [
    Route(BASE + ".json", list_, methods=["GET"]),
    Route(BASE + "/{sid}.json", fetch, methods=["GET"]),
    Route(BASE + "/{sid}.json", update, methods=["POST"]),
]
