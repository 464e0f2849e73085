"""`pigeon erase NUMBER`: remove what Pigeon holds about one phone number, for a person who
asks that their data be deleted (pigeon/store/erasure.py says what goes and what stays).

Without --yes it only counts. `pigeon erase --list` shows the erasures on record, the evidence
that such requests were carried out: when, for which accounts, by what, and how much went;
never the number nor the messages, which the record keeps only as keyed fingerprints.
`pigeon.cli` mounts `erase_cmd`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from pigeon.cli_store import open_store
from pigeon.cli_tables import print_table, whole
from pigeon.ports import SystemClock

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)


#: Who ran an erasure, for its record. The command only: the record is shown, in the doctor's
#: answers, to every account the erasure covered, and the operating system's user names the
#: operator's machine, which tenants have no business knowing.
ERASED_BY = "pigeon erase"


def erase_cmd(
    number: Annotated[
        str | None,
        typer.Argument(
            help="The phone number: E.164 (+14155552671), a short code, or digits as a carrier sent them"
            " (07700900123, a national number as some SMSCs send senders), matched as written.",
            show_default=False,
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Only this account's data and its subaccounts' (default: every account's). With --list:"
            " the erasures that covered this account (run for it, its parent or every account).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Erase; without it, only count what would go.")] = False,
    listing: Annotated[
        bool, typer.Option("--list", help="Show the erasures on record instead (no number: they hold none).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase the messages to and from a phone number (with their timelines and webhooks), the
    request log's entries and the alerts naming it, and its texts to unknown numbers; its
    opt-outs stay, so that it is never texted against its will. Without --yes, only count.
    With --yes the erasure is kept on record (when, who, how much; the number only as a keyed
    fingerprint), so that `pigeon doctor` says the number was erased rather than never texted;
    `pigeon erase --list` shows those records."""
    from pigeon.app import erasure

    if listing:
        if number is not None or yes:
            _usage("--list shows the erasures on record: it takes no number and no --yes")
        _list(account, as_json=as_json)
        return
    if number is None:
        _usage("give the phone number to erase, or --list to show the erasures on record")
    db = open_store()
    try:
        target = erasure.number_of(number)
    except ValueError as exc:
        db.dispose()
        err.print(f"[red]{escape(str(exc))}[/red]", markup=True)
        raise typer.Exit(2) from exc
    try:
        found = erasure.survey(db, target, account=account)
        done = erasure.erase(db, target, account=account, clock=SystemClock(), by=ERASED_BY) if yes else None
    finally:
        db.dispose()
    if as_json:
        report = {"number": target, "account": account, "found": found.as_dict(), "erased": done}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    scope = f"account {account}" if account else "every account"
    out.print(
        f"{target} in {scope}: {found.messages} messages, {found.requests} logged requests,"
        f" {found.alerts} alerts naming it and {found.unroutable} texts to unknown numbers"
        f" {'erased' if yes else 'would be erased'};"
        f" {found.in_progress} messages still on their way are kept until they are done;"
        f" {found.opt_outs} opt-outs are kept.",
        highlight=False,
        soft_wrap=True,
    )
    if erasure.as_written(target):
        out.print(
            f"{target} is matched as written, as a carrier sent it (national form); the same number"
            " in E.164 (+...) is another search.",
            highlight=False,
            soft_wrap=True,
        )
    if not yes:
        out.print("Nothing was changed: run again with --yes to erase.", highlight=False)
    else:
        out.print(
            "The erasure is on record, with the number only as a keyed fingerprint: `pigeon doctor`"
            " says that the number and its messages were erased, and when.",
            highlight=False,
            soft_wrap=True,
        )


def _usage(problem: str) -> NoReturn:
    err.print(f"[red]{escape(problem)}[/red]", markup=True)
    raise typer.Exit(2)


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value is not None else None


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """An erasure as the command prints it: `scope` null for every account."""
    shown = {
        "id": record["id"],
        "started_at": _when(record["started_at"]),
        "finished_at": _when(record["finished_at"]),
        "scope": record["account_sid"],
        "erased_by": record["erased_by"],
        "messages": record["messages"],
        "requests": record["requests"],
        "alerts": record["alerts"],
        "unroutable": record["unroutable"],
        "kept_in_progress": record["kept_in_progress"],
    }
    if "account_messages" in record:
        shown["account_messages"] = record["account_messages"]
    return shown


def _list(account: str | None, *, as_json: bool) -> None:
    from pigeon.app import erasure

    db = open_store()
    try:
        rows = [_shown(r) for r in erasure.records(db, account=account)]
    finally:
        db.dispose()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("No erasures on record" + (f" that covered account {account}." if account else "."))
        return
    # With --account, "its messages": how many of an erasure's messages were that account's.
    counts = ["messages", "requests", "alerts", "unroutable", "kept_in_progress"]
    headers = ["messages", "requests", "alerts", "unroutable", "kept"]
    mine = account is not None
    table = Table(
        Column("id", justify="right"),
        "started (UTC)",
        "finished (UTC)",
        whole("accounts"),
        "by",
        *(Column(h, justify="right") for h in headers),
        *([Column("its messages", justify="right")] if mine else []),
        title="erasures on record: numbers and messages only as keyed fingerprints",
        caption="requests: logged API requests; unroutable: texts to numbers no account took;"
        " kept: messages still on their way, for a later run",
    )
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["started_at"],
            r["finished_at"] or "unfinished: run it again",
            r["scope"] or "every account",
            r["erased_by"] or "",
            *(str(r[c]) for c in counts),
            *([str(r["account_messages"])] if mine else []),
        )
    print_table(out, table)
