"""The doctor in the console: the four troubleshooting flows of DESIGN.md §4, with their
findings, evidence and advice (pigeon.app.diagnose, rendered from pigeon.doctor.render's JSON).

Reading flows are GET forms (a report has a shareable address); the number flow is a POST
with CSRF because it sends a signed test request to the customer's webhook.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.doctor.render import to_json
from pigeon.domain import periods
from pigeon.domain.diagnosis import Report
from pigeon.domain.diagnosis.duplicates import parse_window

from .auth import Session, checked_form, require
from .numbers import _list as account_numbers
from .web import Console, console, render

FLOWS = ("message", "number", "blocked", "duplicates")


def _since(raw: str, now: datetime) -> tuple[datetime | None, str | None]:
    if not raw.strip():
        return None, None
    try:
        return periods.since(raw, now), None
    except ValueError as exc:
        return None, f"Since: {exc}"


async def _page(request: Request, session: Session, flow: str, **values: Any) -> Response:
    owned = await console(request).read(account_numbers, session.account_sid)
    report: Report | None = values.pop("report", None)
    return render(
        request,
        "doctor.html",
        flow=flow,
        flows=FLOWS,
        numbers=owned,
        report=to_json(report) if report is not None else None,
        form=values.pop("form", {}),
        **values,
    )


async def _read(c: Console, fn: Callable[..., Report], *args: Any, **kw: Any) -> Report:
    """One message's report, on the primary: it must be there the moment it was made."""
    return await c.read(lambda conn: fn(conn, *args, **kw))


async def _search(c: Console, fn: Callable[..., Report], *args: Any, **kw: Any) -> Report:
    """A search over history (a recipient, duplicates, an opt-out): on the read replica, if any."""
    return await c.history(lambda conn: fn(conn, *args, **kw))


async def doctor_page(request: Request) -> Response:
    session = await require(request)
    flow = request.query_params.get("flow", "message")
    return await _page(request, session, flow if flow in FLOWS else "message", form=dict(request.query_params))


async def message_flow(request: Request) -> Response:
    """A message by SID, or a recipient's latest messages and refused requests."""
    session = await require(request)
    c = console(request)
    form = {k: v.strip() for k, v in request.query_params.items()}
    now = c.clock.now()
    since, problem = _since(form.get("since", ""), now)
    report = None
    if problem is None and form.get("sid"):
        report = await _read(
            c, diagnose.diagnose_message, session.account_sid, form["sid"], now=now, message_days=c.message_days
        )
    elif problem is None and form.get("to"):
        report = await _search(c, diagnose.diagnose_recipient, session.account_sid, form["to"], since, now=now)
    elif problem is None:
        problem = "Give a message SID, or the recipient's number."
    return await _page(request, session, "message", report=report, form=form, problem=problem)


async def number_flow(request: Request) -> Response:
    session = await require(request)
    form = await checked_form(request, session)
    c = console(request)
    now = c.clock.now()
    since, problem = _since(form.get("since", ""), now)
    if problem is None and not form.get("number"):
        problem = "Choose one of your numbers."
    report = None
    if problem is None:
        if form.get("test"):  # a signed request: not for a suspended account (20005)
            await c.read(account_use.require_active, session.account_sid)
        sender = c.sender_factory() if form.get("test") else None
        try:
            report = await diagnose.diagnose_number(
                c.db, session.account_sid, form["number"], now=now, since=since, sender=sender
            )
        finally:
            close = getattr(sender, "aclose", None)
            if close is not None:
                await close()
    return await _page(request, session, "number", report=report, form=form, problem=problem)


async def blocked_flow(request: Request) -> Response:
    session = await require(request)
    c = console(request)
    form = {k: v.strip() for k, v in request.query_params.items()}
    sender = form.get("from") or None
    service = form.get("service") or None
    problem = None
    if not form.get("to"):
        problem = "Give the recipient's number."
    elif (sender is None) == (service is None):
        problem = "Give the sender's number or the Messaging Service SID (one of them)."
    report = None
    if problem is None:
        report = await _search(
            c, diagnose.diagnose_blocked, session.account_sid, form["to"], sender, service, now=c.clock.now()
        )
    return await _page(request, session, "blocked", report=report, form=form, problem=problem)


async def duplicates_flow(request: Request) -> Response:
    session = await require(request)
    c = console(request)
    form = {k: v.strip() for k, v in request.query_params.items()}
    now = c.clock.now()
    since, problem = _since(form.get("since", ""), now)
    try:
        window = parse_window(form.get("window") or "10")
    except ValueError as exc:
        window, problem = 10.0, str(exc)
    report = None
    if problem is None:
        report = await _search(
            c, diagnose.diagnose_duplicates, session.account_sid, form.get("to") or None, since, window, now=now
        )
    return await _page(request, session, "duplicates", report=report, form=form, problem=problem)


def message_verdict(conn: Any, account_sid: str, sid: str, now: datetime) -> dict[str, Any]:
    """The doctor's report on one message, for its page."""
    return to_json(diagnose.diagnose_message(conn, account_sid, sid, now=now))
