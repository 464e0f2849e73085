"""`pigeon services list`: Messaging Services and their sender pools, for operators."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from pigeon.cli_store import open_store
from pigeon.cli_tables import print_table, whole
from pigeon.store import services as store

services_app = typer.Typer(help="Messaging Services.", no_args_is_help=True)


@services_app.callback()
def services() -> None:
    """Messaging Services (a group of commands even while it has only one)."""


# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)


@services_app.command("list")
def list_(
    account: Annotated[str | None, typer.Option("--account", help="One account's services only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Services of every account (or of one), with the senders in their pools."""
    db = open_store()
    views: list[dict[str, Any]] = []
    with db.read() as conn:
        for s in store.list_services(conn, account):
            views.append(
                {
                    "sid": s["sid"],
                    "account_sid": s["account_sid"],
                    "friendly_name": s["friendly_name"],
                    "inbound_request_url": s["inbound_request_url"],
                    "use_inbound_webhook_on_number": s["use_inbound_webhook_on_number"],
                    "sticky_sender": s["sticky_sender"],
                    "phone_numbers": [n["phone_number"] for n in store.pool_numbers(conn, s["sid"], short_codes=False)],
                    "short_codes": [n["phone_number"] for n in store.pool_numbers(conn, s["sid"], short_codes=True)],
                    "alpha_senders": [a["alpha_sender"] for a in store.list_alpha_senders(conn, s["sid"])],
                }
            )
    if as_json:
        sys.stdout.write(json.dumps(views, indent=2) + "\n")
        return
    # Two whole SIDs fill 80 columns: the account is shown only when listing every account's
    # services.
    both = account is None
    columns = [whole("sid"), *([whole("account")] if both else [])]
    table = Table(*columns, "name", "senders", Column("inbound URL", overflow="fold"))
    for v in views:
        senders = ", ".join([*v["phone_numbers"], *v["short_codes"], *v["alpha_senders"]])
        cells = [v["sid"], *([v["account_sid"]] if both else []), v["friendly_name"], senders or "-"]
        table.add_row(*cells, v["inbound_request_url"] or "-")
    print_table(out, table)


if __name__ == "__main__":
    services_app()
