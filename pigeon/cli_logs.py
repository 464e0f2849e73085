"""`pigeon logs`: the message logs, newest first, or an export of the records with their
timelines (`--export json|csv`). `pigeon.cli` mounts `logs_cmd`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pigeon.cli_debugger import LIMITS, check_range, parse_since
from pigeon.cli_store import open_store
from pigeon.cli_tables import print_table, whole
from pigeon.store.messages import MessageFilter, list_messages

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it.
out = Console(markup=False)


def logs_cmd(
    to: Annotated[str | None, typer.Option("--to")] = None,
    from_: Annotated[str | None, typer.Option("--from")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    since: Annotated[str | None, typer.Option("--since", help="e.g. 15m, 2h, 1d or an ISO date-time")] = None,
    account: Annotated[str | None, typer.Option("--account")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many (default 50; all for --export).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    export_format: Annotated[
        str | None, typer.Option("--export", help="Export the messages with their timelines: json or csv.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File for --export; default standard output.")
    ] = None,
) -> None:
    """Message logs, newest first; with --export, every matching record and its timeline."""
    check_range(limit, LIMITS, "--limit")  # before the store: a mistake is one line, exit 2
    db = open_store()
    f = MessageFilter(account_sid=account, to=to, from_=from_, status=status, created_since=parse_since(since))
    if export_format is not None:
        from pigeon.cli_debugger import export

        export(db, f, export_format.lower(), output=output, limit=limit)
        return
    with db.history() as conn:
        rows = list_messages(conn, f, limit=limit or 50)
    fields = ["sid", "date_created", "direction", "from_", "to", "status", "error_code", "num_segments"]
    if as_json:
        view = [{("from" if k == "from_" else k): r[k] for k in fields} for r in rows]
        sys.stdout.write(json.dumps(view, indent=2, default=str) + "\n")
        return
    table = Table(
        whole("sid"), whole("created"), "direction", whole("from"), whole("to"), "status", "error", "segments"
    )
    for r in rows:
        table.add_row(
            r["sid"],
            f"{r['date_created']:%Y-%m-%d %H:%M:%S}",
            r["direction"],
            r["from_"] or "",
            r["to"],
            r["status"],
            str(r["error_code"] or ""),
            str(r["num_segments"]),
        )
    print_table(out, table)
