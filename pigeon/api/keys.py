"""/2010-04-01/Accounts/{AccountSid}/Keys: an account's API keys, as Twilio's standard keys.

Create answers the secret once (Twilio's NewKey); only its hash is kept. Delete revokes the
key at once, for requests and console sessions alike. Keys are managed with the account's
auth token (or its parent's), not with an API key: a leaked key must not be able to make
itself new ones. Update changes a key's FriendlyName only.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, basic_credentials, ctx, first, form, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V, rfc2822
from pigeon.app import accounts as use

JSON = "application/json; charset=utf-8"
BASE = V + "/Accounts/{account_sid}/Keys"


def key_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": row["sid"],
        "friendly_name": row["friendly_name"],
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row.get("date_updated") or row["date_created"]),
    }


async def _account(request: Request) -> str:
    """The account in the path, once credentials other than an API key may act on it."""
    use.refuse_api_key(basic_credentials(request)[0], "manage API keys")
    account_sid: str = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    return account_sid


async def create(request: Request) -> Response:
    account_sid = await _account(request)
    name = first(await form(request)).get("FriendlyName") or ""
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return use.create_key(conn, account_sid=account_sid, friendly_name=name, now=c.clock.now())

    row = await in_thread(run)
    request.state.created_sid = row["sid"]
    return JSONResponse({**key_json(row), "secret": row["secret"]}, status_code=201, media_type=JSON)


async def list_(request: Request) -> Response:
    account_sid = await _account(request)
    req = parse_page(dict(request.query_params))
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.list_keys(conn, account_sid, offset=req.offset, limit=req.page_size + 1)

    rows = await in_thread(run)
    body = offset_envelope("keys", [key_json(r) for r in rows], path=request.url.path, filters=[], req=req)
    return JSONResponse(body, media_type=JSON)


async def fetch(request: Request) -> Response:
    account_sid = await _account(request)
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.key_of(conn, account_sid, request.path_params["sid"], request.url.path)

    return JSONResponse(key_json(await in_thread(run)), media_type=JSON)


async def update(request: Request) -> Response:
    account_sid = await _account(request)
    params = first(await form(request))
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            sid, path = request.path_params["sid"], request.url.path
            if "FriendlyName" not in params:
                return use.key_of(conn, account_sid, sid, path)
            return use.rename_key(conn, account_sid, sid, path, params["FriendlyName"], c.clock.now())

    return JSONResponse(key_json(await in_thread(run)), media_type=JSON)


async def delete(request: Request) -> Response:
    account_sid = await _account(request)
    c = ctx(request)

    def run() -> None:
        with c.db.write() as conn:
            use.revoke_key(conn, account_sid, request.path_params["sid"], request.url.path)

    await in_thread(run)
    return Response(status_code=204)


routes = [
    Route(BASE + ".json", create, methods=["POST"]),
    Route(BASE + ".json", list_, methods=["GET"]),
    Route(BASE + "/{sid}.json", fetch, methods=["GET"]),
    Route(BASE + "/{sid}.json", update, methods=["POST"]),
    Route(BASE + "/{sid}.json", delete, methods=["DELETE"]),
]
