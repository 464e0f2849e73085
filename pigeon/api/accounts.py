"""/2010-04-01/Accounts: fetch and update an account, list and create subaccounts.

With the account's auth token or its parent's, never an API key (20003, as on Keys): the
Account shows the auth token, makes subaccounts and closes them, for good.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.concurrency import admit
from pigeon.api.context import basic_credentials, ctx, first, form, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V, account_json
from pigeon.app import account_status
from pigeon.app import accounts as use

JSON = "application/json; charset=utf-8"


async def _acting_sid(request: Request) -> str:
    """The account the credentials act as. Never an API key's: the Account shows its auth token."""
    username, password = basic_credentials(request)
    use.refuse_api_key(username, "use the Accounts resource")
    c = ctx(request)

    def check() -> str:
        with c.db.read() as conn:
            return use.authenticate(conn, username, password)

    sid = await in_thread(check)
    request.state.account_sid = sid
    admit(request, sid)
    return sid


async def list_(request: Request) -> Response:
    acting = await _acting_sid(request)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.list_visible(
                conn, acting, friendly_name=params.get("FriendlyName"), status=params.get("Status") or None
            )

    rows = await in_thread(run)
    page = rows[req.offset : req.offset + req.page_size + 1]
    filters = [(k, params[k]) for k in ("FriendlyName", "Status") if params.get(k)]
    body = offset_envelope("accounts", [account_json(r) for r in page], path=request.url.path, filters=filters, req=req)
    return JSONResponse(body, media_type=JSON)


async def create(request: Request) -> Response:
    acting = await _acting_sid(request)
    params = first(await form(request))
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return use.create_subaccount(conn, acting, friendly_name=params.get("FriendlyName"), now=c.clock.now())

    row = await in_thread(run)
    request.state.created_sid = row["sid"]
    return JSONResponse(account_json(row), status_code=201, media_type=JSON)


async def _account(request: Request) -> tuple[str, dict[str, Any]]:
    """(acting account SID, the account in the URL). Unlike the account's other resources,
    the Account itself stays reachable while suspended or closed: its parent must be able to
    see that and to reactivate it (what may change, and by whom, is `use.update_account`'s)."""
    acting = await _acting_sid(request)
    c = ctx(request)

    def check() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.authorize(
                conn, acting, request.path_params["account_sid"], request.url.path, require_active=False
            )

    return acting, await in_thread(check)


async def fetch(request: Request) -> Response:
    _, row = await _account(request)
    return JSONResponse(account_json(row), media_type=JSON)


async def update(request: Request) -> Response:
    acting, target = await _account(request)
    params = first(await form(request))
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return account_status.update_account(
                conn,
                acting,
                target,
                friendly_name=params.get("FriendlyName"),
                status=params.get("Status"),
                now=c.clock.now(),
            )

    return JSONResponse(account_json(await in_thread(run)), media_type=JSON)


routes = [
    Route(V + "/Accounts.json", list_, methods=["GET"]),
    Route(V + "/Accounts.json", create, methods=["POST"]),
    Route(V + "/Accounts/{account_sid}.json", fetch, methods=["GET"]),
    Route(V + "/Accounts/{account_sid}.json", update, methods=["POST"]),
]
