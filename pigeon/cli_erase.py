"""`pigeon erase NUMBER`: remove what Pigeon holds about one phone number, for a person who
asks that their data be deleted (pigeon/store/erasure.py says what goes and what stays).

Without --yes it only counts. `pigeon.cli` mounts `erase_cmd`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pigeon.cli_store import open_store
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
        str,
        typer.Argument(
            help="The phone number: E.164 (+14155552671), a short code, or digits as a carrier sent them"
            " (07700900123, a national number as some SMSCs send senders), matched as written."
        ),
    ],
    account: Annotated[
        str | None,
        typer.Option("--account", help="Only this account's data and its subaccounts' (default: every account's)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Erase; without it, only count what would go.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase the messages to and from a phone number (with their timelines and webhooks), the
    request log's entries and the alerts naming it, and its texts to unknown numbers; its
    opt-outs stay, so that it is never texted against its will. Without --yes, only count.
    With --yes the erasure is kept on record (when, who, how much; the number only as a keyed
    fingerprint), so that `pigeon doctor` says the number was erased rather than never texted."""
    from pigeon.app import erasure

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
