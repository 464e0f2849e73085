"""The handset simulator: text one of your numbers as a phone would, and watch the conversation.

A message goes through the same intake as a carrier's (pigeon.app.inbound.receive, as
POST /simulator/inbound does): opt-out keywords, the inbound record, the application's
webhook, and the replies of its TwiML, which the running workers then send.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pigeon.app import accounts as account_use
from pigeon.app.inbound import Intake, receive
from pigeon.domain import numbers
from pigeon.domain.status import Direction
from pigeon.ports import InboundSms
from pigeon.store import messages as message_store
from pigeon.store.messages import MessageFilter

from .auth import checked_form, require
from .numbers import _list as account_numbers
from .web import console, format_datetime, redirect, render, status_class

Row = dict[str, Any]
CARRIER = "simulator"
DEFAULT_HANDSET = "+14155550100"
HISTORY = 100


def conversation(conn: Any, account_sid: str, handset: str, number: str) -> list[dict[str, Any]]:
    """The messages between the handset and the number, oldest first, with what became of each
    inbound one's webhook."""
    f = MessageFilter(account_sid=account_sid, number=handset)
    rows = [r for r in message_store.list_messages(conn, f, limit=HISTORY) if number in (r["to"], r["from_"])]
    out = []
    for r in reversed(rows):
        webhook = None
        if r["direction"] == str(Direction.INBOUND):
            events = message_store.list_events(conn, r["sid"], account_sid=account_sid)
            webhook = next((e for e in reversed(events) if e["kind"] in ("webhook", "webhook_failed")), None)
        out.append(
            {
                "sid": r["sid"],
                "inbound": r["direction"] == str(Direction.INBOUND),
                "body": r["body"],
                "status": r["status"],
                "status_class": status_class(r["status"]),
                "at": format_datetime(r["date_created"]),
                "error_code": r["error_code"],
                "webhook": None
                if webhook is None
                else {"ok": webhook["kind"] == "webhook", "error_code": webhook["error_code"]},
            }
        )
    return out


def _pair(params: Any) -> tuple[str, str]:
    handset = params.get("from", "").strip()
    return (numbers.to_e164(handset) or handset) if handset else "", params.get("to", "").strip()


async def simulator_page(request: Request) -> Response:
    session = await require(request)
    handset, number = _pair(request.query_params)
    c = console(request)
    owned = await c.read(account_numbers, session.account_sid)
    number = number or (owned[0]["phone_number"] if owned else "")
    handset = handset or DEFAULT_HANDSET
    messages = await c.read(conversation, session.account_sid, handset, number) if number else []
    return render(
        request,
        "simulator.html",
        numbers=owned,
        handset=handset,
        number=number,
        messages=messages,
        result=None,
        poll_query=urlencode({"from": handset, "to": number}),
    )


async def simulator_send(request: Request) -> Response:
    session = await require(request)
    fields = await checked_form(request, session)
    handset, number = _pair(fields)
    c = console(request)
    owned = {n["phone_number"] for n in await c.read(account_numbers, session.account_sid)}
    problem = None
    if not handset:
        problem = "From (the handset's number) is required."
    elif number not in owned:
        problem = "To must be one of this account's numbers."
    if problem is not None:
        return render(request, "error.html", status_code=400, title="Cannot send from the handset", message=problem)
    sms = InboundSms(carrier=CARRIER, sender=handset, recipient=number, body=fields.get("body", ""))

    def run(conn: Any) -> Intake:
        account_use.require_active(conn, session.account_sid)  # a suspended account makes nothing (20005)
        return receive(conn, sms, now=c.clock.now(), base_url=c.base_url, prices=c.prices)

    await c.write(run)
    return redirect(request, "/simulator?" + urlencode({"from": handset, "to": number}))


async def conversation_json(request: Request) -> Response:
    session = await require(request)
    handset, number = _pair(request.query_params)
    messages = await console(request).read(conversation, session.account_sid, handset, number) if number else []
    return JSONResponse({"messages": messages}, headers={"Cache-Control": "no-store"})
