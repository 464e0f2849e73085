"""`pigeon doctor`: the troubleshooting flows of DESIGN.md §4, as commands.

    pigeon doctor message SID                  why this message was not delivered
    pigeon doctor message --to NUMBER          ... or the messages (or refused requests) to a number
    pigeon doctor number NUMBER                why a number receives nothing (tests its webhook)
    pigeon doctor blocked --to N --from N      the opt-out behind a 21610 (or --service MG...)
    pigeon doctor duplicates [--to NUMBER]     where a duplicate text came from

Each prints text, or JSON with --json ({"flow", "subject", "findings", "checks"}; every
finding has a stable `cause`). Exit status: 0 when there is no finding of severity error
(warnings and notes only, or nothing at all), 1 when there is at least one, 2 when the
command could not run (bad arguments, configuration, no such account).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pigeon.app import diagnose
from pigeon.cli_debugger import parse_since
from pigeon.cli_store import open_store
from pigeon.config import denied_networks, load_settings
from pigeon.doctor.render import dumps, exit_code, render_text
from pigeon.domain.diagnosis import Report
from pigeon.domain.diagnosis.duplicates import parse_window
from pigeon.domain.errors import ApiError
from pigeon.ports import SystemClock
from pigeon.store import accounts as account_store
from pigeon.store.engine import Database

T = TypeVar("T")

doctor_app = typer.Typer(
    help="Find out why a message was not delivered, a number receives nothing, a recipient is blocked, "
    "or a text arrived twice. Exit status 1 when a finding is an error.",
    no_args_is_help=True,
)

# Markup off, as in every command module (pigeon.cli); styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
AccountOpt = Annotated[
    str | None, typer.Option("--account", help="Account SID; defaults to the only top-level account.")
]
SinceOpt = Annotated[str, typer.Option("--since", help="How far back to look: 15m, 2h, 1d or an ISO date-time.")]


def _db() -> Database:
    """The store the server uses, with its replica. The doctor only reads, and a schema other
    than this release's would have it fail on a column that is not there: that is said in one
    line instead (`open_store`)."""
    return open_store()


def _account(db: Database, account: str | None) -> str:
    with db.read() as conn:
        if account is not None:
            if account_store.get_account(conn, account) is None:
                err.print(f"[red]no account {escape(account)}[/red]", markup=True)
                raise typer.Exit(2)
            return account
        tops = [r for r in account_store.list_accounts(conn) if r["owner_account_sid"] == r["sid"]]
    if len(tops) != 1:
        err.print("[red]several accounts exist (or none): choose one with --account[/red]", markup=True)
        raise typer.Exit(2)
    return str(tops[0]["sid"])


def _read(db: Database, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """One message's report, on the primary: it must be there the moment it was made."""
    with db.read() as conn:
        return fn(conn, *args, **kw)


def _search(db: Database, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """A search over history: on the read replica, if there is one."""
    with db.history() as conn:
        return fn(conn, *args, **kw)


def _finish(report: Report, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(dumps(report))
    else:
        render_text(report, out)
    raise typer.Exit(exit_code(report))


@doctor_app.command("message")
def message(
    sid: Annotated[str | None, typer.Argument(help="The message SID (SM... or MM...).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Ask about a recipient instead of one message.")] = None,
    since: SinceOpt = "24h",
    account: AccountOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """My message wasn't delivered: the carrier's answer, the code explained, what to do.

    With a SID: that message's timeline, the carrier's raw answer, the code explained and what to
    do. With --to: that number's recent messages, or the API's refusals of requests to text it,
    or that the application never asked."""
    if (sid is None) == (to is None):
        err.print("[red]give a message SID or --to NUMBER (one of them)[/red]", markup=True)
        raise typer.Exit(2)
    db = _db()
    now = clock.now()
    account_sid = _account(db, account)
    if sid is not None:
        days = load_settings().message_days
        report = _read(db, diagnose.diagnose_message, account_sid, sid, now=now, message_days=days)
    else:
        assert to is not None
        report = _search(db, diagnose.diagnose_recipient, account_sid, to, parse_since(since, now), now=now)
    _finish(report, as_json)


@doctor_app.command("number")
def number(
    phone_number: Annotated[str, typer.Argument(help="One of your numbers, E.164 or a short code.")],
    test_request: Annotated[
        bool,
        typer.Option(
            "--test-request/--no-test-request",
            help="Send the webhook a signed test request (Body 'Pigeon doctor test', PigeonDoctorTest=true).",
        ),
    ] = True,
    since: SinceOpt = "24h",
    account: AccountOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """My number receives nothing: its account, capability, webhook, failed and unroutable texts.

    Checks the number is on the account and SMS-capable, which webhook applies (the number's or
    its Messaging Service's), sends that webhook a signed test request (status, time, TwiML valid),
    and lists texts whose webhook failed or that never reached the account, and short-code rules."""
    from pigeon.webhooks.sender import HttpWebhookSender

    db = _db()
    now = clock.now()
    account_sid = _account(db, account)

    async def run() -> Report:
        denied = denied_networks(load_settings().webhook_denied_networks)
        sender = HttpWebhookSender(denied_networks=denied) if test_request else None
        try:
            return await diagnose.diagnose_number(
                db, account_sid, phone_number, now=now, since=parse_since(since, now), sender=sender
            )
        finally:
            if sender is not None:
                await sender.aclose()

    _finish(asyncio.run(run()), as_json)


@doctor_app.command("blocked")
def blocked(
    to: Annotated[str, typer.Option("--to", help="The recipient.")],
    from_: Annotated[str | None, typer.Option("--from", help="Your sending number.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Or your Messaging Service SID (MG...).")] = None,
    account: AccountOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Why sends to a recipient fail with 21610: the opt-out behind it.

    The keyword, when, the text that carried it, its scope (the number or the whole Messaging
    Service), and how the recipient opts back in."""
    if (from_ is None) == (service is None):
        err.print("[red]give --from NUMBER or --service MG... (one of them)[/red]", markup=True)
        raise typer.Exit(2)
    db = _db()
    account_sid = _account(db, account)
    try:
        report = _search(db, diagnose.diagnose_blocked, account_sid, to, from_, service, now=clock.now())
    except ApiError as exc:  # --service names no Messaging Service of the account
        err.print(f"[red]error {exc.code}:[/red] {escape(exc.message)}", markup=True)
        raise typer.Exit(2) from None
    _finish(report, as_json)


@doctor_app.command("duplicates")
def duplicates(
    to: Annotated[str | None, typer.Option("--to", help="Only texts to this recipient.")] = None,
    since: SinceOpt = "24h",
    # Text, read by parse_window: Click's float type would take "1e3", "nan" and "1_0".
    window: Annotated[str, typer.Option("--window", help="Seconds between texts that count as duplicates.")] = "10",
    account: AccountOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Texts sent twice: which side repeated them.

    Several records: the application made several requests (each from the request log). One
    record: Pigeon resent it (and why), or the carrier delivered it twice."""
    db = _db()
    now = clock.now()
    try:
        seconds = parse_window(window)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    account_sid = _account(db, account)
    report = _search(db, diagnose.diagnose_duplicates, account_sid, to, parse_since(since, now), seconds, now=now)
    _finish(report, as_json)


if __name__ == "__main__":
    doctor_app()
