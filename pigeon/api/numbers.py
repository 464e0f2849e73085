"""/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers: the account's own numbers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, first, form, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V, number_json
from pigeon.app import inventory
from pigeon.app import numbers as use

JSON = "application/json; charset=utf-8"
TYPES = {"Local": "local", "Mobile": "mobile", "TollFree": "toll_free"}


def _shown(row: dict[str, Any], typed: bool) -> dict[str, Any]:
    """A number as the path shows it: under …/Local.json, …/Mobile.json and …/TollFree.json,
    Twilio's resource has no `type` (the path says it)."""
    body = number_json(row)
    if typed:
        body.pop("type", None)
    return body


async def create(request: Request) -> Response:
    """Buy a number: PhoneNumber (one from AvailablePhoneNumbers) or AreaCode (the first free
    number there) comes out of the inventory onto the account. The Local/Mobile/TollFree paths
    buy only numbers of that kind."""
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = first(await form(request))
    settings = use.settings_from_params(params)
    kind = request.url.path.rsplit("/", 1)[-1].removesuffix(".json")
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return inventory.buy(
                conn,
                account_sid=account_sid,
                now=c.clock.now(),
                phone_number=params.get("PhoneNumber"),
                area_code=params.get("AreaCode"),
                number_type=TYPES.get(kind),
                settings=settings,
            )

    row = await in_thread(run)
    request.state.created_sid = row["sid"]
    return JSONResponse(_shown(row, kind in TYPES), status_code=201, media_type=JSON)


async def list_(request: Request) -> Response:
    """The account's numbers; under …/Local.json, …/Mobile.json or …/TollFree.json, only that
    type's."""
    account_sid = request.path_params["account_sid"]
    number_type = TYPES.get(request.url.path.rsplit("/", 1)[-1].removesuffix(".json"))
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.list_for_account(
                conn,
                account_sid,
                phone_number=params.get("PhoneNumber"),
                friendly_name=params.get("FriendlyName"),
                offset=req.offset,
                limit=req.page_size + 1,
                number_type=number_type,
                origin=params.get("Origin") or None,
            )

    rows = await in_thread(run)
    filters = [(k, params[k]) for k in ("PhoneNumber", "FriendlyName", "Origin") if params.get(k)]
    body = offset_envelope(
        "incoming_phone_numbers",
        [_shown(r, number_type is not None) for r in rows],
        path=request.url.path,
        filters=filters,
        req=req,
    )
    return JSONResponse(body, media_type=JSON)


async def fetch(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.fetch(conn, account_sid, sid, request.url.path)

    return JSONResponse(number_json(await in_thread(run)), media_type=JSON)


async def update(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    params = first(await form(request))
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            # AccountSid moves the number: only the main account's credentials may (21474).
            acting_sid = request.state.account_sid
            return use.update(conn, account_sid, sid, request.url.path, params, c.clock.now(), acting_sid=acting_sid)

    return JSONResponse(number_json(await in_thread(run)), media_type=JSON)


async def delete(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> None:
        with c.db.write() as conn:
            use.release(conn, account_sid, sid, request.url.path, c.clock.now())

    await in_thread(run)
    return Response(status_code=204)


BASE = V + "/Accounts/{account_sid}/IncomingPhoneNumbers"
routes = [
    Route(BASE + ".json", create, methods=["POST"]),
    Route(BASE + ".json", list_, methods=["GET"]),
    *[Route(BASE + f"/{t}.json", create, methods=["POST"]) for t in TYPES],
    *[Route(BASE + f"/{t}.json", list_, methods=["GET"]) for t in TYPES],  # before /{sid}.json
    Route(BASE + "/{sid}.json", fetch, methods=["GET"]),
    Route(BASE + "/{sid}.json", update, methods=["POST"]),
    Route(BASE + "/{sid}.json", delete, methods=["DELETE"]),
]
