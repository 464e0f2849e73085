"""Numbers: the account's numbers and short codes, their webhook configuration, a signed test
request to that webhook, and buying a number from the inventory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pigeon.app import accounts as account_use
from pigeon.app import inventory as inventory_use
from pigeon.app import numbers as number_use
from pigeon.app import short_codes as short_code_use
from pigeon.app.inbound import WebhookTarget, webhook_params, webhook_target
from pigeon.app.inbound_webhook import Conversation, converse
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, new_sid, new_token
from pigeon.store import accounts as account_store
from pigeon.store import services as service_store
from pigeon.store.messages import NewMessage

from .auth import Session, checked_form, require
from .web import Console, console, redirect, render

Row = dict[str, Any]

#: Console form field -> IncomingPhoneNumber parameter.
FIELDS = {
    "sms_url": "SmsUrl",
    "sms_method": "SmsMethod",
    "sms_fallback_url": "SmsFallbackUrl",
    "sms_fallback_method": "SmsFallbackMethod",
    "status_callback": "StatusCallback",
}
#: The sender a webhook test claims the message came from (Twilio's documented test number).
TEST_FROM = "+15005550006"
TEST_BODY = "Test request from the Pigeon console"
TYPES = {"Local": "Local", "TollFree": "Toll-free", "Mobile": "Mobile"}


def _is_short_code(sid: str) -> bool:
    return sid.startswith(str(Prefix.SHORT_CODE))


def _fetch(conn: Any, account_sid: str, sid: str, path: str) -> Row:
    if _is_short_code(sid):
        return short_code_use.fetch(conn, account_sid, sid, path)
    return number_use.fetch(conn, account_sid, sid, path)


def _list(conn: Any, account_sid: str) -> list[Row]:
    rows = number_use.list_for_account(conn, account_sid, phone_number=None, friendly_name=None, offset=0, limit=1000)
    rows += short_code_use.list_for_account(
        conn, account_sid, short_code=None, friendly_name=None, offset=0, limit=1000
    )
    return rows


async def numbers_page(request: Request) -> Response:
    session = await require(request)
    rows = await console(request).read(_list, session.account_sid)
    return render(request, "numbers.html", rows=rows)


def _number_view(conn: Any, account_sid: str, sid: str, path: str) -> dict[str, Any]:
    number = _fetch(conn, account_sid, sid, path)
    service = (
        service_store.get_service(conn, number["messaging_service_sid"]) if number["messaging_service_sid"] else None
    )
    return {"number": number, "service": service, "target": webhook_target(number, service)}


async def _render_number(request: Request, session: Session, *, status_code: int = 200, **extra: Any) -> Response:
    sid = request.path_params["sid"]
    view = await console(request).read(_number_view, session.account_sid, sid, request.url.path)
    values = extra.pop("values", None) or view["number"]
    return render(
        request,
        "number.html",
        status_code=status_code,
        values=values,
        saved="saved" in request.query_params,
        **view,
        **extra,
    )


async def number_page(request: Request) -> Response:
    session = await require(request)
    return await _render_number(request, session)


def params_from_form(fields: Mapping[str, str], *, short_code: bool) -> dict[str, str]:
    params = {param: fields.get(name, "") for name, param in FIELDS.items() if name in fields}
    if short_code:
        params.pop("StatusCallback", None)
    return params


async def save_number(request: Request) -> Response:
    session = await require(request)
    fields = await checked_form(request, session)
    sid = request.path_params["sid"]
    c = console(request)
    params = params_from_form(fields, short_code=_is_short_code(sid))
    update = short_code_use.update if _is_short_code(sid) else number_use.update

    def run(conn: Any) -> Row:
        account_use.require_active(conn, session.account_sid)
        return update(conn, session.account_sid, sid, request.url.path, params, c.clock.now())

    try:
        await c.write(run)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _render_number(request, session, status_code=400, error=exc, values=fields)
    return redirect(request, f"/numbers/{sid}?saved=1")


# -- test webhook -----------------------------------------------------------------------------


def test_delivery(number: Mapping[str, Any], target: WebhookTarget, base_url: str) -> dict[str, Any]:
    """The inbound delivery a test sends: Twilio's incoming-message parameters for a message
    from TEST_FROM, to the number's effective webhook (the number's or its service's)."""
    message = {
        "sid": new_sid(Prefix.SMS),
        "account_sid": number["account_sid"],
        "messaging_service_sid": number["messaging_service_sid"],
        "from_": TEST_FROM,
        "to": number["phone_number"],
        "body": TEST_BODY,
        "num_media": 0,
        "num_segments": 1,
    }
    return {
        "id": None,
        "account_sid": number["account_sid"],
        "message_sid": None,
        "kind": "inbound",
        "url": target.url,
        "method": target.method,
        "params": webhook_params(NewMessage(message=message), base_url=base_url, opt_out_type=None),
        "fallback_url": target.fallback_url,
        "fallback_method": target.fallback_method,
        "idempotency_token": new_token(),
    }


async def run_test(c: Console, account_sid: str, sid: str, path: str) -> tuple[Conversation | None, str | None]:
    """(the conversation, None) or (None, why no request was made). Nothing is recorded: a
    test creates no message, no alert and sends none of the replies. The account must be
    active (20005): a suspended one sends no signed requests."""

    def load(conn: Any) -> tuple[dict[str, Any], str | None]:
        view = _number_view(conn, account_sid, sid, path)
        account_use.require_active(conn, account_sid)
        account = account_store.get_account(conn, view["number"]["account_sid"])
        return view, account["auth_token"] if account else None

    view, token = await c.read(load)
    target: WebhookTarget = view["target"]
    if not target.url:
        where = (
            "its Messaging Service has no inbound request URL" if target.source == "service" else "it has no SMS URL"
        )
        return None, f"Nothing to test: {where}."
    assert token is not None
    sender = c.sender_factory()
    try:
        convo = await converse(sender, token, test_delivery(view["number"], target, c.base_url))
    finally:
        close = getattr(sender, "aclose", None)
        if close is not None:
            await close()
    return convo, None


async def test_webhook(request: Request) -> Response:
    session = await require(request)
    await checked_form(request, session)
    convo, why = await run_test(console(request), session.account_sid, request.path_params["sid"], request.url.path)
    return await _render_number(request, session, test=convo, test_problem=why)


# -- buying -----------------------------------------------------------------------------------


async def buy_page(request: Request) -> Response:
    session = await require(request)
    params = request.query_params
    country = params.get("country", "US").strip().upper() or "US"
    kind = params.get("type", "Local") if params.get("type") in TYPES else "Local"
    search = {"Contains": params.get("contains", "").strip(), "AreaCode": params.get("area_code", "").strip()}
    search = {k: v for k, v in search.items() if v}
    error: ApiError | None = None

    def load(conn: Any) -> tuple[dict[str, list[str]], list[Row]]:
        return inventory_use.countries(conn), inventory_use.search(conn, country, kind, search, offset=0, limit=30)

    try:
        countries, rows = await console(request).read(load)
    except ApiError as exc:
        error = exc
        countries, rows = await console(request).read(lambda conn: (inventory_use.countries(conn), []))
    return render(
        request,
        "buy.html",
        rows=rows,
        countries=countries,
        country=country,
        kind=kind,
        types=TYPES,
        contains=params.get("contains", ""),
        area_code=params.get("area_code", ""),
        error=error,
        account=session.account,
    )


async def buy(request: Request) -> Response:
    session = await require(request)
    fields = await checked_form(request, session)
    c = console(request)

    def run(conn: Any) -> Row:
        account_use.require_active(conn, session.account_sid)
        return inventory_use.buy(
            conn, account_sid=session.account_sid, now=c.clock.now(), phone_number=fields.get("phone_number", "")
        )

    try:
        row = await c.write(run)
    except ApiError as exc:
        return render(
            request,
            "buy.html",
            status_code=400,
            rows=[],
            countries={},
            country="US",
            kind="Local",
            types=TYPES,
            contains="",
            area_code="",
            error=exc,
            account=session.account,
        )
    return redirect(request, f"/numbers/{row['sid']}")
