"""`pigeon usage`: what each account sent and received over a range of days, and what it cost,
from the usage ledger (the same counts as the API's Usage Records). `pigeon.cli` mounts
`usage_cmd`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from pigeon.cli_store import open_store
from pigeon.cli_tables import print_table, whole

out = Console(markup=False)  # account SIDs and numbers only; markup off as everywhere (pigeon.cli)
err = Console(stderr=True, markup=False)


def usage_cmd(
    since: Annotated[
        str | None, typer.Option("--since", help="First day, YYYY-MM-DD or -30days (default: this month's first).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day, YYYY-MM-DD (default: today).")] = None,
    account: Annotated[str | None, typer.Option("--account", help="One account only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Messages, segments and price by account and category over a range of days (UTC)."""
    from pigeon.app import usage
    from pigeon.domain import usage as rules

    today = datetime.now(UTC).date()
    try:
        first = rules.parse_date(since, today=today, name="--since") if since else today.replace(day=1)
        last = rules.parse_date(until, today=today, name="--until") if until else today
    except rules.UsageError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", markup=True)
        raise typer.Exit(2) from exc
    db = open_store()
    try:
        with db.history() as conn:
            rows = usage.totals_by_account(conn, first=first, last=last, account_sid=account)
    finally:
        db.dispose()
    for r in rows:
        r["price"] = usage.price_text(r.pop("price_micros"))
    if as_json:
        report = {"first_day": first.isoformat(), "last_day": last.isoformat(), "usage": rows}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    # Each account's SID on a row of its own, its categories under it: an account column
    # beside the category would take 80 columns by itself.
    table = Table(
        whole("account / category"),
        Column("messages", justify="right"),
        Column("segments", justify="right"),
        Column("price", justify="right"),
        title=f"usage {first.isoformat()} to {last.isoformat()} (UTC)",
    )
    shown = None
    for r in rows:
        if r["account_sid"] != shown:
            shown = r["account_sid"]
            table.add_row(shown, "", "", "")
        table.add_row(f"  {r['category']}", str(r["messages"]), str(r["segments"]), r["price"])
    if rows:
        print_table(out, table)
    else:
        out.print("No usage in that range.")
