"""/v1/Services: Messaging Services and their sender pools (messaging.twilio.com/v1).

/v1/Services                                   POST create 201, GET list 200
/v1/Services/{Sid}                             GET 200, POST update 200, DELETE 204
/v1/Services/{ServiceSid}/PhoneNumbers[/{Sid}] POST (PhoneNumberSid) 201, GET, DELETE 204
/v1/Services/{ServiceSid}/ShortCodes[/{Sid}]   POST (ShortCodeSid) 201, GET, DELETE 204
/v1/Services/{ServiceSid}/AlphaSenders[/{Sid}] POST (AlphaSender) 201, GET, DELETE 204
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import ctx, first, form, in_thread
from pigeon.api.paging import parse_page
from pigeon.api.service_schemas import alpha_sender_json, service_json, service_number_json, service_short_code_json
from pigeon.api.v1 import acting_account, envelope
from pigeon.app import services as use

JSON = "application/json; charset=utf-8"
T = TypeVar("T")
Row = dict[str, Any]


# `conn` is the store's Connection; the API layer hands it on without importing sqlalchemy.
async def _read(request: Request, fn: Callable[[Any, str], T]) -> T:
    account = await acting_account(request)
    c = ctx(request)

    def run() -> T:
        with c.db.read() as conn:
            return fn(conn, account)

    return await in_thread(run)


async def _write(request: Request, fn: Callable[[Any, str, Mapping[str, str]], T]) -> T:
    account = await acting_account(request)
    params = first(await form(request))
    c = ctx(request)

    def run() -> T:
        with c.db.write() as conn:
            return fn(conn, account, params)

    return await in_thread(run)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=JSON)


def _created(request: Request, body: Row) -> JSONResponse:
    request.state.created_sid = body["sid"]
    return _json(body, 201)


# -- services ---------------------------------------------------------------------------------


async def create(request: Request) -> Response:
    c = ctx(request)
    row = await _write(request, lambda conn, account, params: use.create(conn, account, params, c.clock.now()))
    return _created(request, service_json(row, c.base_url))


async def list_(request: Request) -> Response:
    c, req = ctx(request), parse_page(dict(request.query_params))
    rows = await _read(
        request, lambda conn, account: use.list_for_account(conn, account, offset=req.offset, limit=req.page_size + 1)
    )
    items = [service_json(r, c.base_url) for r in rows]
    return _json(envelope("services", items, base_url=c.base_url, path=request.url.path, req=req))


async def fetch(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _read(request, lambda conn, account: use.fetch(conn, account, sid, path))
    return _json(service_json(row, c.base_url))


async def update(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _write(
        request, lambda conn, account, params: use.update(conn, account, sid, path, params, c.clock.now())
    )
    return _json(service_json(row, c.base_url))


async def delete(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    await _write(request, lambda conn, account, _params: use.delete(conn, account, sid, path, c.clock.now()))
    return Response(status_code=204)


# -- numbers and short codes in a pool ----------------------------------------------------------


def _number_routes(collection: str, key: str, param: str, short_code: bool) -> list[Route]:
    render = service_short_code_json if short_code else service_number_json

    async def add(request: Request) -> Response:
        c, service, path = ctx(request), request.path_params["service_sid"], request.url.path
        row = await _write(
            request,
            lambda conn, account, params: use.add_number(
                conn, account, service, params.get(param), short_code=short_code, path=path, now=c.clock.now()
            ),
        )
        return _created(request, render(row, c.base_url))

    async def list_numbers(request: Request) -> Response:
        c, service, req = ctx(request), request.path_params["service_sid"], parse_page(dict(request.query_params))
        rows = await _read(
            request,
            lambda conn, account: use.list_numbers(
                conn, account, service, short_codes=short_code, offset=req.offset, limit=req.page_size + 1
            ),
        )
        items = [render(r, c.base_url) for r in rows]
        return _json(envelope(key, items, base_url=c.base_url, path=request.url.path, req=req))

    async def fetch_number(request: Request) -> Response:
        c, service, sid = ctx(request), request.path_params["service_sid"], request.path_params["sid"]
        row = await _read(
            request,
            lambda conn, account: use.fetch_number(
                conn, account, service, sid, short_code=short_code, path=request.url.path
            ),
        )
        return _json(render(row, c.base_url))

    async def remove(request: Request) -> Response:
        c, service, sid = ctx(request), request.path_params["service_sid"], request.path_params["sid"]
        await _write(
            request,
            lambda conn, account, _params: use.remove_number(
                conn, account, service, sid, short_code=short_code, path=request.url.path, now=c.clock.now()
            ),
        )
        return Response(status_code=204)

    base = "/v1/Services/{service_sid}/" + collection
    return [
        Route(base, add, methods=["POST"]),
        Route(base, list_numbers, methods=["GET"]),
        Route(base + "/{sid}", fetch_number, methods=["GET"]),
        Route(base + "/{sid}", remove, methods=["DELETE"]),
    ]


# -- alphanumeric senders -------------------------------------------------------------------------


async def add_alpha(request: Request) -> Response:
    c, service = ctx(request), request.path_params["service_sid"]
    row = await _write(
        request,
        lambda conn, account, params: use.add_alpha_sender(
            conn, account, service, params.get("AlphaSender"), c.clock.now()
        ),
    )
    return _created(request, alpha_sender_json(row, c.base_url))


async def list_alpha(request: Request) -> Response:
    c, service, req = ctx(request), request.path_params["service_sid"], parse_page(dict(request.query_params))
    rows = await _read(
        request,
        lambda conn, account: use.list_alpha_senders(
            conn, account, service, offset=req.offset, limit=req.page_size + 1
        ),
    )
    items = [alpha_sender_json(r, c.base_url) for r in rows]
    return _json(envelope("alpha_senders", items, base_url=c.base_url, path=request.url.path, req=req))


async def fetch_alpha(request: Request) -> Response:
    c, service, sid = ctx(request), request.path_params["service_sid"], request.path_params["sid"]
    row = await _read(
        request, lambda conn, account: use.fetch_alpha_sender(conn, account, service, sid, request.url.path)
    )
    return _json(alpha_sender_json(row, c.base_url))


async def remove_alpha(request: Request) -> Response:
    service, sid = request.path_params["service_sid"], request.path_params["sid"]
    await _write(
        request,
        lambda conn, account, _params: use.remove_alpha_sender(conn, account, service, sid, request.url.path),
    )
    return Response(status_code=204)


ALPHA = "/v1/Services/{service_sid}/AlphaSenders"
routes = [
    Route("/v1/Services", create, methods=["POST"]),
    Route("/v1/Services", list_, methods=["GET"]),
    Route("/v1/Services/{sid}", fetch, methods=["GET"]),
    Route("/v1/Services/{sid}", update, methods=["POST"]),
    Route("/v1/Services/{sid}", delete, methods=["DELETE"]),
    *_number_routes("PhoneNumbers", "phone_numbers", "PhoneNumberSid", short_code=False),
    *_number_routes("ShortCodes", "short_codes", "ShortCodeSid", short_code=True),
    Route(ALPHA, add_alpha, methods=["POST"]),
    Route(ALPHA, list_alpha, methods=["GET"]),
    Route(ALPHA + "/{sid}", fetch_alpha, methods=["GET"]),
    Route(ALPHA + "/{sid}", remove_alpha, methods=["DELETE"]),
]
