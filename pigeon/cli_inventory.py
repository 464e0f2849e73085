"""`pigeon inventory`: the numbers free to buy (AvailablePhoneNumbers).

    pigeon inventory import numbers.csv     load or update numbers (columns: see below)
    pigeon inventory list [--country US]    what is free to buy
    pigeon inventory seed                   load the built-in sample (fictional numbers)

The CSV columns are those of pigeon.app.inventory_csv: phone_number (required), iso_country,
number_type (local|toll_free|mobile), locality, region, postal_code, rate_center, lata,
latitude, longitude, sms, mms, voice, fax (true/false), address_requirements
(none|any|local|foreign). A file with a bad row imports nothing and lists every problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pigeon.app import inventory
from pigeon.app.inventory_csv import InventoryFileError, import_csv
from pigeon.cli_store import open_store, read_or_exit
from pigeon.cli_tables import print_table, whole
from pigeon.ports import SystemClock
from pigeon.store import inventory as store

inventory_app = typer.Typer(help="Numbers free to buy (AvailablePhoneNumbers).", no_args_is_help=True)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@inventory_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="CSV file with a header row; '-' reads standard input.")],
    as_json: JsonFlag = False,
) -> None:
    """Load numbers into the inventory; numbers already there are updated, numbers on an account skipped."""
    text = sys.stdin.read() if str(path) == "-" else read_or_exit(path)
    db = open_store()
    try:
        with db.write() as conn:
            report = import_csv(conn, text, clock.now())
    except InventoryFileError as exc:
        err.print(f"[red]{escape(exc.message)}[/red]", soft_wrap=True, markup=True)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1) from exc
    summary = {"added": report.added, "updated": report.updated, "skipped_on_an_account": report.skipped_owned}
    if as_json:
        _print_json(summary)
        return
    out.print(
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.skipped_owned)} skipped (already on an account)",
        highlight=False,
        soft_wrap=True,
    )


@inventory_app.command("list")
def list_(
    country: Annotated[str | None, typer.Option("--country", help="ISO country code, e.g. US.")] = None,
    number_type: Annotated[str | None, typer.Option("--type", help="local, toll_free or mobile.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Numbers in the inventory, by country and number."""
    db = open_store()
    with db.read() as conn:
        rows = store.list_all(
            conn, iso_country=country.upper() if country else None, number_type=number_type, limit=limit
        )
    fields = ["phone_number", "iso_country", "number_type", "locality", "region", "address_requirements"]
    if as_json:
        _print_json(
            [
                {
                    **{k: r[k] for k in fields},
                    "capabilities": {"sms": r["sms_capable"], "mms": r["mms_capable"], "voice": r["voice_capable"]},
                }
                for r in rows
            ]
        )
        return
    table = Table(whole("number"), "country", "type", "locality", "region", "sms", "mms", "voice", "address")
    for r in rows:
        flags = ["yes" if r[f"{c}_capable"] else "-" for c in ("sms", "mms", "voice")]
        table.add_row(
            r["phone_number"],
            r["iso_country"],
            r["number_type"],
            r["locality"] or "",
            r["region"] or "",
            *flags,
            r["address_requirements"],
        )
    print_table(out, table)


@inventory_app.command("seed")
def seed() -> None:
    """Load the built-in sample of fictional US, CA, GB and DE numbers (harmless to repeat)."""
    db = open_store()
    with db.write() as conn:
        added = inventory.seed_default(conn, clock.now())
    out.print(f"{added} sample numbers added", highlight=False)


if __name__ == "__main__":
    inventory_app()
