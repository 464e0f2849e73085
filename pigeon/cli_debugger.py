"""The debugger's commands: `pigeon requests`, `pigeon alerts`, `pigeon errors CODE`, and the
export behind `pigeon logs --export`.

`pigeon.cli` mounts `requests_cmd`, `alerts_cmd` and `errors_cmd`; `debugger_app` runs them on
their own (`python -m pigeon.cli_debugger requests ...`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from pigeon.cli_store import open_store, output_or_exit
from pigeon.cli_tables import print_table, whole
from pigeon.domain import periods
from pigeon.domain.error_catalogue import ErrorInfo, explain

if TYPE_CHECKING:
    from pigeon.store.engine import Database
    from pigeon.store.messages import MessageFilter

# The store, the configuration and the composition root are imported where they are used:
# `pigeon errors` needs none of them, and they take seconds to import on a busy machine.

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SinceOption = Annotated[str | None, typer.Option("--since", help="e.g. 15m, 2h, 1d or an ISO date-time")]
AccountOption = Annotated[str | None, typer.Option("--account", help="One account only.")]
LimitOption = Annotated[int, typer.Option("--limit", help="At most this many rows, newest first.")]

_KINDS = {
    "api": "returned by the API when it refuses a request",
    "delivery": "set on a message that failed or was not delivered",
    "webhook": "logged as an alert when a webhook or its TwiML could not be used",
    "inbound": "logged against an inbound message",
    "debugger": "a warning Pigeon's debugger logs as an alert (Pigeon's own code, not Twilio's)",
}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """--since: '15m', '2h', '3d', '30s' back from now, or a day or an ISO date-time (every
    command's --since takes the same, `pigeon.domain.periods`)."""
    if not value:
        return None
    try:
        return periods.since(value, now or datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


#: The ranges of the numbers the commands filter by: past them a value matches nothing, and a
#: store cannot even take it (SQLite's integers stop at 2**63; an OverflowError, as a traceback).
HTTP_STATUSES = (100, 599)
ERROR_CODES = (1, 99_999)  # Twilio's codes have five digits at most
LIMITS = (1, 2**31 - 1)


def check_range(value: int | None, bounds: tuple[int, int], flag: str) -> None:
    """End the command with one line and status 2 when `value` is outside `bounds`."""
    low, high = bounds
    if value is not None and not low <= value <= high:
        err.print(f"[red]{flag} must be between {low} and {high}, not {value}[/red]", markup=True)
        raise typer.Exit(2)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value is not None else None


# -- pigeon requests ---------------------------------------------------------------------------


_ACCOUNT_PREFIX = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}")


def _short_path(path: str) -> str:
    """The path without the /2010-04-01/Accounts/AC… that every 2010 path starts with."""
    return _ACCOUNT_PREFIX.sub("", path) or path


def request_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": row["sid"],
        "at": _iso(row["at"]),
        "account_sid": row["account_sid"] or row.get("claimed_account_sid"),
        "authenticated": row["account_sid"] is not None,
        "method": row["method"],
        "path": row["path"],
        "status": row["status"],
        "error_code": row["error_code"],
        "resource_sid": row["resource_sid"],
        "source_ip": row["source_ip"],
        "user_agent": row["user_agent"],
        "idempotency_key": row["idempotency_key"],
        "duration_ms": round(row["duration_ms"], 2),
        "to": row["to"],
        "from": row["from_"],
        "content_hash": row["content_hash"],
    }


def requests_cmd(
    account: AccountOption = None,
    to: Annotated[str | None, typer.Option("--to", help="Sends to this number.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Sends from this number.")] = None,
    status: Annotated[int | None, typer.Option("--status", help="HTTP status, e.g. 400.")] = None,
    error_code: Annotated[int | None, typer.Option("--code", help="Twilio error code, e.g. 21211.")] = None,
    since: SinceOption = None,
    limit: LimitOption = 50,
    unauthenticated: Annotated[
        bool,
        typer.Option(
            "--unauthenticated",
            help="With --account: the requests that only named the account, their credentials refused or never "
            "checked (why a program's calls fail with 20003).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The request log: every API request with its status, error code, source and duration
    (never a message body or credentials), newest first."""
    from pigeon.store.request_log import RequestFilter, list_requests

    if unauthenticated and account is None:
        err.print("[red]--unauthenticated needs --account: which account did the requests name?[/red]", markup=True)
        raise typer.Exit(2)
    check_range(status, HTTP_STATUSES, "--status")
    check_range(error_code, ERROR_CODES, "--code")
    check_range(limit, LIMITS, "--limit")
    f = RequestFilter(
        account_sid=account,
        to=to,
        from_=from_,
        status=status,
        error_code=error_code,
        since=parse_since(since),
        authenticated=not unauthenticated,
    )
    db = open_store()
    with db.history() as conn:
        rows = [request_view(r) for r in list_requests(conn, f, limit=limit)]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("No requests match." if any((account, to, from_, status, error_code, since)) else "No requests yet.")
        return
    # A narrow terminal gets the essentials; piped, every column (pigeon/cli_tables.py prints
    # it at its natural width); `--json` has every field.
    wide = out.width >= 140 or not out.is_terminal
    columns = [
        Column("time", no_wrap=True),
        Column("status", no_wrap=True),
        Column("request", overflow="fold"),
        whole("to"),
        Column("source", no_wrap=True),
        Column("ms", justify="right", no_wrap=True),
    ]
    if wide:
        columns[4:4] = [
            whole("resource"),
            Column("user agent", overflow="ellipsis", max_width=30),
            Column("idempotency key", overflow="fold"),
        ]
    table = Table(*columns)
    for r in rows:
        cells = [
            (r["at"] or "")[5:19].replace("T", " "),
            f"{r['status']} {r['error_code'] or ''}".strip(),
            f"{r['method']} {_short_path(r['path'])}",
            r["to"] or "",
            r["source_ip"] or "",
            f"{r['duration_ms']:.0f}",
        ]
        if wide:
            cells[4:4] = [r["resource_sid"] or "", r["user_agent"] or "", r["idempotency_key"] or ""]
        table.add_row(*cells)
    print_table(out, table)


# -- pigeon alerts -----------------------------------------------------------------------------


def alert_view(row: dict[str, Any]) -> dict[str, Any]:
    info = explain(row["error_code"])
    return {
        "sid": row["sid"],
        "date_created": _iso(row["date_created"]),
        "account_sid": row["account_sid"],
        "error_code": row["error_code"],
        "error_name": info.name if info else None,
        "log_level": row["log_level"],
        "resource_sid": row["resource_sid"],
        "alert_text": row["alert_text"],
        "request_method": row["request_method"],
        "request_url": row["request_url"],
        "request_variables": row["request_variables"],
        "response_status": row["response_status"],
        "response_body": row["response_body"],
        "more_info": info.more_info if info else None,
    }


def alerts_cmd(
    account: AccountOption = None,
    code: Annotated[int | None, typer.Option("--code", help="Only this error code.")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="Only alerts about this SID.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="error or warning.")] = None,
    since: SinceOption = None,
    limit: LimitOption = 50,
    as_json: JsonFlag = False,
) -> None:
    """The error log: failures that happened after a request was accepted (carrier errors,
    webhook and TwiML failures, unroutable inbound messages) and duplicate-send warnings."""
    from pigeon.store.alerts import list_alerts

    check_range(code, ERROR_CODES, "--code")
    check_range(limit, LIMITS, "--limit")
    db = open_store()
    with db.history() as conn:
        rows = list_alerts(
            conn,
            account_sid=account,
            error_code=code,
            resource_sid=resource,
            log_level=level,
            since=parse_since(since),
            limit=limit,
        )
    views = [alert_view(r) for r in rows]
    if as_json:
        _print_json(views)
        return
    if not views:
        out.print("No alerts.")
        return
    table = Table(
        Column("time", no_wrap=True),
        "level",
        "code",
        "name",
        whole("resource"),
        Column("text", overflow="fold", ratio=1),
    )
    for v in views:
        table.add_row(
            (v["date_created"] or "")[:19],
            v["log_level"],
            str(v["error_code"]),
            v["error_name"] or "",
            v["resource_sid"] or "",
            v["alert_text"],
        )
    print_table(out, table)


# -- pigeon errors -----------------------------------------------------------------------------


def error_view(info: ErrorInfo) -> dict[str, Any]:
    return {
        "code": info.code,
        "name": info.name,
        "kind": info.kind,
        "http_status": info.http_status,
        "meaning": info.meaning,
        "causes": list(info.causes),
        "remedy": list(info.remedy),
        "more_info": info.more_info,
    }


def errors_cmd(
    code: Annotated[str, typer.Argument(help="A Twilio error code, e.g. 30007.")],
    as_json: JsonFlag = False,
) -> None:
    """What an error code means, its likely causes and what to do, in Pigeon's words."""
    info = explain(int(code)) if code.strip().isascii() and code.strip().isdigit() else None
    if info is None:
        err.print(
            f"Pigeon does not know error code {code}. It explains the codes it emits; "
            f"Twilio's list is at https://www.twilio.com/docs/api/errors",
            highlight=False,
        )
        raise typer.Exit(1)
    if as_json:
        _print_json(error_view(info))
        return
    status = f", HTTP {info.http_status}" if info.http_status else ""
    out.print(f"[bold]{info.code}  {escape(info.name)}[/bold]", highlight=False, markup=True)
    out.print(f"{_KINDS[info.kind]}{status}\n", highlight=False)
    out.print("[bold]What it means[/bold]", markup=True)
    out.print(f"  {info.meaning}\n", highlight=False)
    out.print("[bold]Likely causes[/bold]", markup=True)
    for cause in info.causes:
        out.print(f"  - {cause}", highlight=False)
    out.print("\n[bold]What to do[/bold]", markup=True)
    for step in info.remedy:
        out.print(f"  - {step}", highlight=False)
    more = f"`pigeon errors {info.code}` (Pigeon's own code)" if info.more_info.startswith("/") else info.more_info
    out.print(f"\nMore: {more}", highlight=False, soft_wrap=True)


# -- pigeon logs --export ----------------------------------------------------------------------


@contextmanager
def _target(output: str | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    with output_or_exit(output) as fh:
        yield fh


def export(db: Database, f: MessageFilter, fmt: str, *, output: str | None = None, limit: int | None = None) -> int:
    """Write the messages `f` matches, each with its timeline, as JSON or CSV to `output` (a
    path; standard output when None). Returns how many messages it wrote."""
    from pigeon.app import export as export_use

    if fmt not in export_use.FORMATS:
        raise typer.BadParameter(f"--export must be one of {', '.join(export_use.FORMATS)}, not {fmt!r}")
    count = 0
    with _target(output) as fh, db.history() as conn:  # a path it cannot write stops it first
        records = export_use.export_all(conn, f, limit=limit)
        writer = export_use.formatter(fmt, exported_at=datetime.now(UTC), filters=export_use.filter_view(f))
        fh.write(writer.head())
        for record in records:
            fh.write(writer.item(record))
            count += 1
        fh.write(writer.tail())
    if output is not None:
        err.print(f"{count} messages written to {output}", highlight=False)
    return count


debugger_app = typer.Typer(help="The debugger: request log, error log, error codes.", no_args_is_help=True)
debugger_app.command("requests")(requests_cmd)
debugger_app.command("alerts")(alerts_cmd)
debugger_app.command("errors")(errors_cmd)


if __name__ == "__main__":
    debugger_app()
