"""/2010-04-01/Accounts/{AccountSid}/Usage/Triggers: thresholds on the account's usage that
call a URL once reached, as Twilio's UsageTrigger resources (the SDK's `client.usage.triggers`):
create, list (filtered by Recurring, TriggerBy, UsageCategory), fetch, update (CallbackUrl,
CallbackMethod, FriendlyName) and delete. `current_value` is read when the trigger is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, first, form, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import API_VERSION, V, rfc2822
from pigeon.app import usage_triggers as use
from pigeon.domain.usage_triggers import value_text

JSON = "application/json; charset=utf-8"
BASE = V + "/Accounts/{account_sid}/Usage/Triggers"

Row = dict[str, Any]


def trigger_json(row: Row, *, current: str, today: date) -> Row:
    return {
        "account_sid": row["account_sid"],
        "api_version": API_VERSION,
        "callback_method": row["callback_method"],
        "callback_url": row["callback_url"],
        "current_value": current,
        "date_created": rfc2822(row["date_created"]),
        "date_fired": rfc2822(row["date_fired"]),
        "date_updated": rfc2822(row["date_updated"]),
        "friendly_name": row["friendly_name"],
        "recurring": row["recurring"],
        "sid": row["sid"],
        "trigger_by": row["trigger_by"],
        "trigger_value": row["trigger_value"],
        "uri": f"{V}/Accounts/{row['account_sid']}/Usage/Triggers/{row['sid']}.json",
        "usage_category": row["usage_category"],
        "usage_record_uri": use.record_uri(row, today=today),
    }


def _with_values(conn: Any, rows: list[Row], today: date) -> list[Row]:
    values = use.current_values(conn, rows, today=today)
    return [trigger_json(row, current=value_text(v), today=today) for row, v in zip(rows, values, strict=True)]


async def _write(request: Request, change: Callable[..., Row], *, status: int = 200) -> Response:
    """Authorise, run `change(conn, account_sid, params, now)` in a write transaction, and
    answer the trigger it returns with its current value."""
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = first(await form(request))
    c = ctx(request)

    def run() -> Row:
        now = c.clock.now().astimezone(UTC)
        with c.db.write() as conn:
            row = change(conn, account_sid, params, now)
            return _with_values(conn, [row], now.date())[0]

    return JSONResponse(await in_thread(run), status_code=status, media_type=JSON)


async def create(request: Request) -> Response:
    return await _write(request, use.create, status=201)


async def list_(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    c = ctx(request)

    def run() -> list[Row]:
        today = c.clock.now().astimezone(UTC).date()
        with c.db.read() as conn:
            rows = use.list_for_account(conn, account_sid, params, offset=req.offset, limit=req.page_size + 1)
            return _with_values(conn, rows, today)

    rows = await in_thread(run)
    filters = [(k, params[k]) for k in ("Recurring", "TriggerBy", "UsageCategory") if params.get(k)]
    body = offset_envelope("usage_triggers", rows, path=request.url.path, filters=filters, req=req)
    return JSONResponse(body, media_type=JSON)


async def fetch(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> Row:
        today = c.clock.now().astimezone(UTC).date()
        with c.db.read() as conn:
            return _with_values(conn, [use.fetch(conn, account_sid, sid, request.url.path)], today)[0]

    return JSONResponse(await in_thread(run), media_type=JSON)


async def update(request: Request) -> Response:
    sid, path = request.path_params["sid"], request.url.path
    return await _write(
        request, lambda conn, account_sid, params, now: use.update(conn, account_sid, sid, path, params, now)
    )


async def delete(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> None:
        with c.db.write() as conn:
            use.delete(conn, account_sid, sid, request.url.path)

    await in_thread(run)
    return Response(status_code=204)


routes = [
    Route(BASE + ".json", list_, methods=["GET"]),
    Route(BASE + ".json", create, methods=["POST"]),
    Route(BASE + "/{sid}.json", fetch, methods=["GET"]),
    Route(BASE + "/{sid}.json", update, methods=["POST"]),
    Route(BASE + "/{sid}.json", delete, methods=["DELETE"]),
]
