"""/2010-04-01/Accounts/{AccountSid}/Doctor/...: `pigeon doctor` over HTTP (a Pigeon addition).

    GET Doctor/Messages/{Sid}.json                                  one message
    GET Doctor/Messages.json?To=&Since=                             a recipient's messages / refused requests
    GET Doctor/Numbers/{PhoneNumber}.json?Since=&TestRequest=false  a number (tests its webhook by default)
    GET Doctor/Blocked.json?To=&From=|MessagingServiceSid=          the opt-out behind a 21610
    GET Doctor/Duplicates.json?To=&Since=&Window=                   where a duplicate came from

Each answers the same JSON as `pigeon doctor ... --json`. Since is a duration back from now
(15m, 2h, 1d) or an ISO 8601 date-time; the default is the last 24 hours.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, in_thread
from pigeon.api.query import flag_param, since
from pigeon.api.schemas import V
from pigeon.app import diagnose
from pigeon.doctor.render import to_json
from pigeon.domain.diagnosis import Report
from pigeon.domain.diagnosis.duplicates import parse_window
from pigeon.domain.errors import ApiError
from pigeon.ports import WebhookSender

JSON = "application/json; charset=utf-8"
BASE = V + "/Accounts/{account_sid}/Doctor"


def _answer(report: Report) -> Response:
    return JSONResponse(to_json(report), media_type=JSON)


def _since(request: Request, now: datetime) -> datetime | None:
    raw = request.query_params.get("Since")
    if not raw:
        return None
    return since("Since", raw, now)


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise ApiError(20422, f"The {name} parameter is required.")
    return value


async def _run(request: Request, fn: Callable[..., Report], *args: Any, history: bool = True, **kw: Any) -> Report:
    """`fn` in a read: of history (the read replica, if any) for the searches, or on the
    primary (`history=False`) for one message, which must be there the moment it was made."""
    c = ctx(request)

    def read() -> Report:
        with c.db.history() if history else c.db.read() as conn:
            return fn(conn, *args, **kw)

    return await in_thread(read)


async def message(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)
    report = await _run(
        request,
        diagnose.diagnose_message,
        account_sid,
        sid,
        history=False,
        now=c.clock.now(),
        message_days=c.message_days,
    )
    if report.causes() == ["message_not_found"]:
        raise ApiError(20404, f"The requested resource {request.url.path} was not found", status=404)
    return _answer(report)


async def recipient(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    to = _required(request, "To")
    now = ctx(request).clock.now()
    return _answer(await _run(request, diagnose.diagnose_recipient, account_sid, to, _since(request, now), now=now))


async def number(request: Request) -> Response:
    account_sid, phone_number = request.path_params["account_sid"], request.path_params["phone_number"]
    await authorized_account(request, account_sid)
    c = ctx(request)
    now = c.clock.now()
    kw: dict[str, Any] = {"now": now, "since": _since(request, now)}
    test = flag_param(request.query_params, "TestRequest", default=True)
    # The composition root may share its WebhookSender on app.state; else one for this request.
    shared: WebhookSender | None = getattr(request.app.state, "webhook_sender", None)
    if not test or shared is not None:
        report = await diagnose.diagnose_number(c.db, account_sid, phone_number, sender=shared if test else None, **kw)
        return _answer(report)
    from pigeon.webhooks.sender import HttpWebhookSender

    own = HttpWebhookSender(denied_networks=c.webhook_denied_networks)
    try:
        report = await diagnose.diagnose_number(c.db, account_sid, phone_number, sender=own, **kw)
    finally:
        await own.aclose()
    return _answer(report)


async def blocked(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    to = _required(request, "To")
    from_ = request.query_params.get("From", "").strip() or None
    service = request.query_params.get("MessagingServiceSid", "").strip() or None
    if (from_ is None) == (service is None):
        raise ApiError(20422, "Give From or MessagingServiceSid (one of them).")
    now = ctx(request).clock.now()
    return _answer(await _run(request, diagnose.diagnose_blocked, account_sid, to, from_, service, now=now))


async def duplicates(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    to = request.query_params.get("To", "").strip() or None
    raw_window = request.query_params.get("Window", "10")
    try:
        window = parse_window(raw_window)
    except ValueError as exc:
        raise ApiError(20422, str(exc)) from None
    now = ctx(request).clock.now()
    report = await _run(request, diagnose.diagnose_duplicates, account_sid, to, _since(request, now), window, now=now)
    return _answer(report)


routes = [
    Route(BASE + "/Messages/{sid}.json", message, methods=["GET"]),
    Route(BASE + "/Messages.json", recipient, methods=["GET"]),
    Route(BASE + "/Numbers/{phone_number}.json", number, methods=["GET"]),
    Route(BASE + "/Blocked.json", blocked, methods=["GET"]),
    Route(BASE + "/Duplicates.json", duplicates, methods=["GET"]),
]
