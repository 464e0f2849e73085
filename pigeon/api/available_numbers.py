"""/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers: searching the numbers free to buy.

AvailablePhoneNumbers.json                          countries with free numbers
AvailablePhoneNumbers/{CountryCode}.json            one country
AvailablePhoneNumbers/{CountryCode}/{Type}.json     Local, TollFree, Mobile (National, Voip,
                                                    SharedCost, MachineToMachine: always empty)

A country numbers are not sold in (pigeon.domain.inventory.COUNTRY_NAMES) and not stocked
either is a 404 (20404) on both paths, as Twilio answers one: its search is not an empty page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import V
from pigeon.api.service_schemas import available_number_json, country_json
from pigeon.app import inventory as use
from pigeon.domain.errors import ApiError

JSON = "application/json; charset=utf-8"
PAGING = frozenset({"PageSize", "Page", "PageToken"})


def _not_found(request: Request) -> ApiError:
    return ApiError(20404, f"The requested resource {request.url.path} was not found", status=404)


def _country(request: Request) -> str:
    raw = request.path_params["country"]
    if len(raw) != 2 or not raw.isalpha():
        raise _not_found(request)
    return str(raw).upper()


async def countries(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> dict[str, list[str]]:
        with c.db.read() as conn:
            return use.countries(conn)

    found = await in_thread(run)
    body = {
        "countries": [country_json(account_sid, cc, kinds) for cc, kinds in found.items()],
        "uri": request.url.path,
    }
    return JSONResponse(body, media_type=JSON)


async def country(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    code = _country(request)
    c = ctx(request)

    def run() -> dict[str, list[str]]:
        with c.db.read() as conn:
            return use.countries(conn)

    kinds = (await in_thread(run)).get(code)
    if kinds is None:
        raise _not_found(request)
    return JSONResponse(country_json(account_sid, code, kinds), media_type=JSON)


async def numbers(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    code, resource = _country(request), request.path_params["resource"]
    if resource not in use.RESOURCE_TYPES:
        raise _not_found(request)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)

    def run() -> list[dict[str, Any]] | None:
        with c.db.read() as conn:
            if not use.serves_country(conn, code):
                return None
            return use.search(conn, code, resource, params, offset=req.offset, limit=req.page_size + 1)

    rows = await in_thread(run)
    if rows is None:  # XX/Local.json: no such country, as XX.json (a 404, not an empty page)
        raise _not_found(request)
    filters = [(k, v) for k, v in request.query_params.multi_items() if k not in PAGING]
    body = offset_envelope(
        "available_phone_numbers",
        [available_number_json(r) for r in rows],
        path=request.url.path,
        filters=filters,
        req=req,
    )
    return JSONResponse(body, media_type=JSON)


BASE = V + "/Accounts/{account_sid}/AvailablePhoneNumbers"
routes = [
    Route(BASE + ".json", countries, methods=["GET"]),
    Route(BASE + "/{country}.json", country, methods=["GET"]),
    Route(BASE + "/{country}/{resource}.json", numbers, methods=["GET"]),
]
