"""Event Streams (events.twilio.com/v1) on this server: sinks, subscriptions, event types.

/v1/Sinks                                           POST create 201, GET list (InUse, Status)
/v1/Sinks/{Sid}                                     GET, POST (Description), DELETE 204
/v1/Sinks/{Sid}/Test                                POST 201 {"result": "submitted"}
/v1/Sinks/{Sid}/Validate                            POST (TestId) 201 {"result": "valid"}
/v1/Subscriptions                                   POST create 201, GET list (SinkSid)
/v1/Subscriptions/{Sid}                             GET, POST (Description), DELETE 204
/v1/Subscriptions/{Sid}/SubscribedEvents            GET list, POST (Type, SchemaVersion) 201
/v1/Subscriptions/{Sid}/SubscribedEvents/{Type}     GET, POST (SchemaVersion), DELETE 204
/v1/Types[/{Type}]                                  GET (SchemaId filter)
/v1/Schemas/{Id}[/Versions[/{SchemaVersion}]]       GET

The account is the one the Basic credentials act as (pigeon.api.v1); URLs are absolute on
this server's base URL, dates ISO 8601, lists page in a v1 ``meta`` whose page URLs keep the
list's filters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import ctx, first, form, in_thread
from pigeon.api.event_schemas import (
    event_type_json,
    page,
    schema_json,
    schema_version_json,
    sink_json,
    subscribed_event_json,
    subscription_json,
)
from pigeon.api.paging import parse_page
from pigeon.api.v1 import acting_account
from pigeon.app import event_streams as use
from pigeon.domain.integers import whole_number

JSON = "application/json; charset=utf-8"
T = TypeVar("T")
Row = dict[str, Any]
Fields = list[tuple[str, str]]


# -- plumbing ---------------------------------------------------------------------------------


# `conn` is the store's Connection; the API layer hands it on without importing sqlalchemy.
async def _read(request: Request, fn: Callable[[Any, str], T]) -> T:
    account = await acting_account(request)
    c = ctx(request)

    def run() -> T:
        with c.db.read() as conn:
            return fn(conn, account)

    return await in_thread(run)


async def _write(request: Request, fn: Callable[[Any, str, Fields], T]) -> T:
    account = await acting_account(request)
    fields = await form(request)
    c = ctx(request)

    def run() -> T:
        with c.db.write() as conn:
            return fn(conn, account, fields)

    return await in_thread(run)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=JSON)


def _created(request: Request, body: Row) -> JSONResponse:
    if "sid" in body:
        request.state.created_sid = body["sid"]
    return _json(body, 201)


def _query(request: Request, *names: str) -> Fields:
    return [(n, request.query_params[n]) for n in names if request.query_params.get(n)]


# -- sinks ------------------------------------------------------------------------------------


async def create_sink(request: Request) -> Response:
    c = ctx(request)
    row = await _write(request, lambda conn, account, f: use.create_sink(conn, account, first(f), c.clock.now()))
    return _created(request, sink_json(row, c.base_url))


async def list_sinks(request: Request) -> Response:
    c, req, filters = ctx(request), parse_page(dict(request.query_params)), _query(request, "InUse", "Status")
    rows = await _read(
        request,
        lambda conn, account: use.list_sinks(conn, account, dict(filters), offset=req.offset, limit=req.page_size + 1),
    )
    items = [sink_json(r, c.base_url) for r in rows]
    return _json(page("sinks", items, base=c.base_url, path=request.url.path, req=req, filters=filters))


async def fetch_sink(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _read(request, lambda conn, account: use.fetch_sink(conn, account, sid, path))
    return _json(sink_json(row, c.base_url))


async def update_sink(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _write(
        request, lambda conn, account, f: use.update_sink(conn, account, sid, path, first(f), c.clock.now())
    )
    return _json(sink_json(row, c.base_url))


async def delete_sink(request: Request) -> Response:
    sid, path = request.path_params["sid"], request.url.path
    await _write(request, lambda conn, account, _f: use.delete_sink(conn, account, sid, path))
    return Response(status_code=204)


async def test_sink(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    body = await _write(request, lambda conn, account, _f: use.test_sink(conn, account, sid, path, c.clock.now()))
    return _created(request, body)


async def validate_sink(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    body = await _write(
        request, lambda conn, account, f: use.validate_sink(conn, account, sid, path, first(f), c.clock.now())
    )
    return _created(request, body)


# -- subscriptions ----------------------------------------------------------------------------


async def create_subscription(request: Request) -> Response:
    c = ctx(request)
    row = await _write(
        request,
        lambda conn, account, f: use.create_subscription(
            conn, account, first(f), [v for k, v in f if k == "Types"], c.clock.now()
        ),
    )
    return _created(request, subscription_json(row, c.base_url))


async def list_subscriptions(request: Request) -> Response:
    c, req, filters = ctx(request), parse_page(dict(request.query_params)), _query(request, "SinkSid")
    rows = await _read(
        request,
        lambda conn, account: use.list_subscriptions(
            conn, account, dict(filters), offset=req.offset, limit=req.page_size + 1
        ),
    )
    items = [subscription_json(r, c.base_url) for r in rows]
    return _json(page("subscriptions", items, base=c.base_url, path=request.url.path, req=req, filters=filters))


async def fetch_subscription(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _read(request, lambda conn, account: use.fetch_subscription(conn, account, sid, path))
    return _json(subscription_json(row, c.base_url))


async def update_subscription(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path
    row = await _write(
        request, lambda conn, account, f: use.update_subscription(conn, account, sid, path, first(f), c.clock.now())
    )
    return _json(subscription_json(row, c.base_url))


async def delete_subscription(request: Request) -> Response:
    sid, path = request.path_params["sid"], request.url.path
    await _write(request, lambda conn, account, _f: use.delete_subscription(conn, account, sid, path))
    return Response(status_code=204)


# -- subscribed events ------------------------------------------------------------------------


async def list_subscribed_events(request: Request) -> Response:
    c, sid, path, req = (
        ctx(request),
        request.path_params["sid"],
        request.url.path,
        parse_page(dict(request.query_params)),
    )
    row = await _read(request, lambda conn, account: use.fetch_subscription(conn, account, sid, path))
    entries = row["types"][req.offset : req.offset + req.page_size + 1]
    items = [subscribed_event_json(e, row["account_sid"], sid, c.base_url) for e in entries]
    return _json(page("types", items, base=c.base_url, path=path, req=req))


async def add_subscribed_event(request: Request) -> Response:
    c, sid, path = ctx(request), request.path_params["sid"], request.url.path

    def run(conn: Any, account: str, f: Fields) -> Row:
        entry = use.add_subscribed_event(conn, account, sid, path, first(f), c.clock.now())
        return subscribed_event_json(entry, account, sid, c.base_url)

    return _created(request, await _write(request, run))


async def fetch_subscribed_event(request: Request) -> Response:
    c, sid, type_, path = ctx(request), request.path_params["sid"], request.path_params["type"], request.url.path

    def run(conn: Any, account: str) -> Row:
        entry = use.subscribed_event(use.fetch_subscription(conn, account, sid, path), type_, path)
        return subscribed_event_json(entry, account, sid, c.base_url)

    return _json(await _read(request, run))


async def update_subscribed_event(request: Request) -> Response:
    c, sid, type_, path = ctx(request), request.path_params["sid"], request.path_params["type"], request.url.path

    def run(conn: Any, account: str, f: Fields) -> Row:
        entry = use.update_subscribed_event(conn, account, sid, type_, path, first(f), c.clock.now())
        return subscribed_event_json(entry, account, sid, c.base_url)

    return _json(await _write(request, run))


async def remove_subscribed_event(request: Request) -> Response:
    c, sid, type_, path = ctx(request), request.path_params["sid"], request.path_params["type"], request.url.path
    await _write(
        request, lambda conn, account, _f: use.remove_subscribed_event(conn, account, sid, type_, path, c.clock.now())
    )
    return Response(status_code=204)


# -- types and schemas ------------------------------------------------------------------------


async def list_types(request: Request) -> Response:
    c, req, filters = ctx(request), parse_page(dict(request.query_params)), _query(request, "SchemaId")
    await acting_account(request)
    types = use.event_types(dict(filters).get("SchemaId"))[req.offset : req.offset + req.page_size + 1]
    items = [event_type_json(t, c.base_url) for t in types]
    return _json(page("types", items, base=c.base_url, path=request.url.path, req=req, filters=filters))


async def fetch_type(request: Request) -> Response:
    await acting_account(request)
    c = ctx(request)
    return _json(event_type_json(use.event_type(request.path_params["type"], request.url.path), c.base_url))


async def fetch_schema(request: Request) -> Response:
    await acting_account(request)
    c = ctx(request)
    return _json(schema_json(use.schema(request.path_params["id"], request.url.path), c.base_url))


async def list_schema_versions(request: Request) -> Response:
    await acting_account(request)
    c, req, path = ctx(request), parse_page(dict(request.query_params)), request.url.path
    t = use.schema(request.path_params["id"], path)
    versions = list(range(1, t.latest_version + 1))[req.offset : req.offset + req.page_size + 1]
    items = [schema_version_json(t, v, c.base_url) for v in versions]
    return _json(page("schema_versions", items, base=c.base_url, path=path, req=req))


async def fetch_schema_version(request: Request) -> Response:
    await acting_account(request)
    c, path = ctx(request), request.url.path
    t = use.schema(request.path_params["id"], path)
    version = whole_number(request.path_params["version"])
    if version is None or not 1 <= version <= t.latest_version:
        raise use.not_found(path)
    return _json(schema_version_json(t, version, c.base_url))


SINK, SUBSCRIPTION = "/v1/Sinks/{sid}", "/v1/Subscriptions/{sid}"
SUBSCRIBED = SUBSCRIPTION + "/SubscribedEvents"
routes = [
    Route("/v1/Sinks", create_sink, methods=["POST"]),
    Route("/v1/Sinks", list_sinks, methods=["GET"]),
    Route(SINK, fetch_sink, methods=["GET"]),
    Route(SINK, update_sink, methods=["POST"]),
    Route(SINK, delete_sink, methods=["DELETE"]),
    Route(SINK + "/Test", test_sink, methods=["POST"]),
    Route(SINK + "/Validate", validate_sink, methods=["POST"]),
    Route("/v1/Subscriptions", create_subscription, methods=["POST"]),
    Route("/v1/Subscriptions", list_subscriptions, methods=["GET"]),
    Route(SUBSCRIPTION, fetch_subscription, methods=["GET"]),
    Route(SUBSCRIPTION, update_subscription, methods=["POST"]),
    Route(SUBSCRIPTION, delete_subscription, methods=["DELETE"]),
    Route(SUBSCRIBED, list_subscribed_events, methods=["GET"]),
    Route(SUBSCRIBED, add_subscribed_event, methods=["POST"]),
    Route(SUBSCRIBED + "/{type}", fetch_subscribed_event, methods=["GET"]),
    Route(SUBSCRIBED + "/{type}", update_subscribed_event, methods=["POST"]),
    Route(SUBSCRIBED + "/{type}", remove_subscribed_event, methods=["DELETE"]),
    Route("/v1/Types", list_types, methods=["GET"]),
    Route("/v1/Types/{type}", fetch_type, methods=["GET"]),
    Route("/v1/Schemas/{id}", fetch_schema, methods=["GET"]),
    Route("/v1/Schemas/{id}/Versions", list_schema_versions, methods=["GET"]),
    Route("/v1/Schemas/{id}/Versions/{version}", fetch_schema_version, methods=["GET"]),
]
