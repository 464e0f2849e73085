"""`pigeon optouts`: the recipients who opted out, to look at, export and bring over.

    pigeon optouts list [--account AC…] [--recipient N]     the pair or service each blocks, and why
    pigeon optouts export [--format csv|json] [-o FILE]      the list, as a file
    pigeon optouts import FILE --account AC… [--yes]         from an export (a dry run without --yes)
    pigeon optouts remove --account AC… --recipient N --sender S [--yes]   lift one (a dry run without --yes)

`pigeon.cli` mounts `optouts_app`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pigeon.cli_store import fail, open_store, output_or_exit, write_or_rehearse
from pigeon.cli_tables import print_table, whole
from pigeon.domain.errors import ApiError

optouts_app = typer.Typer(help="Recipients who opted out.", no_args_is_help=True)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@optouts_app.command("list")
def optouts_list(
    account: Annotated[str | None, typer.Option("--account")] = None,
    recipient: Annotated[str | None, typer.Option("--recipient")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every opt-out: the pair or service it blocks, the keyword, when, and the message behind it."""
    from pigeon.app import optouts

    db = open_store()
    with db.read() as conn:
        # An empty option filters nothing, as an empty filter of the API's does.
        rows = [optouts.view(r) for r in optouts.list_for_account(conn, account or None, recipient=recipient)]
    if as_json:
        _print_json(rows)
        return
    table = Table(whole("recipient"), whole("sender"), "scope", "keyword", "when", whole("inbound message"))
    for r in rows:
        table.add_row(
            r["recipient"], r["sender"], r["scope"], r["keyword"], r["date_created"], r["inbound_message_sid"] or ""
        )
    print_table(out, table)


@optouts_app.command("export")
def optouts_export(
    account: Annotated[str | None, typer.Option("--account")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write; default standard output.")
    ] = None,
) -> None:
    """Export the opt-out list as CSV or JSON."""
    from pigeon.app import optouts

    target = output_or_exit(output) if output else None  # a path it cannot write stops it first
    db = open_store()
    with db.read() as conn:
        rows = optouts.list_for_account(conn, account or None)
    text = optouts.to_csv(rows) if fmt == "csv" else json.dumps([optouts.view(r) for r in rows], indent=2) + "\n"
    if target is None:
        sys.stdout.write(text)
        return
    with target:
        target.write(text)


@optouts_app.command("import")
def optouts_import(
    path: Annotated[str, typer.Argument(help="A CSV or JSON file, as `pigeon optouts export` writes them.")],
    account: Annotated[str, typer.Option("--account", help="The account whose list they join.")],
    from_account: Annotated[
        str | None,
        typer.Option("--from-account", help="Also take the file's rows of this account (an export from elsewhere)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Import; without it, only show what would be done.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add opt-outs from a file (moving from another platform or another Pigeon), so that
    nobody who said STOP there is texted here. Without --yes, a dry run. Exit status 1 when a
    row was skipped (the list says why)."""
    from pigeon.app import accounts as account_use
    from pigeon.app import optouts

    try:
        rows = optouts.read_rows(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        err.print(f"[red]{escape(path)}: {escape(str(exc))}[/red]", markup=True)
        raise typer.Exit(2) from exc
    db = open_store()
    now = datetime.now(UTC)

    def work(conn: Any) -> list[optouts.Imported]:
        if account_use.existing(conn, account)["status"] == "closed":
            raise ApiError(21479, f"Account {account} is closed.")
        return optouts.import_rows(conn, rows, account_sid=account, now=now, from_account=from_account)

    try:
        done = write_or_rehearse(db, work, apply=yes)
    except ApiError as exc:
        raise fail(exc) from exc
    finally:
        db.dispose()
    counts = {action: sum(d.action == action for d in done) for action in ("made", "here already", "skipped")}
    if as_json:
        _print_json({"account": account, "applied": yes, "counts": counts, "rows": [vars(d) for d in done]})
    else:
        for d in done:
            if d.action == "skipped" or d.note:
                said = f"skipped: {d.why}" if d.action == "skipped" else f"{d.action}; {d.note}"
                out.print(f"line {d.line}: {d.recipient} / {d.sender}: {said}", highlight=False, soft_wrap=True)
        tail = "" if yes else " Dry run: nothing was changed; run again with --yes to import."
        out.print(
            f"{counts['made']} {'added' if yes else 'to add'}, {counts['here already']} opted out here already,"
            f" {counts['skipped']} skipped.{tail}",
            highlight=False,
            soft_wrap=True,
        )
    if counts["skipped"]:
        raise typer.Exit(1)


@optouts_app.command("remove")
def optouts_remove(
    account: Annotated[str, typer.Option("--account", help="The account whose opt-out it is.")],
    recipient: Annotated[str, typer.Option("--recipient", help="Who opted out, as the list shows it.")],
    sender: Annotated[str, typer.Option("--sender", help="The number, short code or Messaging Service SID.")],
    yes: Annotated[bool, typer.Option("--yes", help="Remove; without it, only show what would be removed.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Lift one opt-out, once the recipient has asked to hear from the sender again where Pigeon
    does not see it: START texted to a short code outside any Messaging Service reaches its
    application, not Pigeon. Elsewhere Pigeon takes the recipient's START itself; never lift an
    opt-out the recipient did not ask to lift. Without --yes, a dry run."""
    from pigeon.app import optouts

    db = open_store()
    try:
        row = write_or_rehearse(
            db, lambda conn: optouts.remove(conn, account, recipient=recipient, sender=sender), apply=yes
        )
    except ApiError as exc:
        raise fail(exc) from exc
    finally:
        db.dispose()
    if as_json:
        _print_json({"applied": yes, "opt_out": optouts.view(row)})
        return
    done = "Removed" if yes else "Would remove"
    tail = "" if yes else " Dry run: nothing was changed; run again with --yes to remove it."
    out.print(
        f"{done} the opt-out of {row['recipient']} from {row['sender']} ({row['keyword']}, "
        f"{optouts.view(row)['date_created']}).{tail}",
        highlight=False,
        soft_wrap=True,
    )
