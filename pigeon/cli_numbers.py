"""`pigeon numbers`: phone numbers on accounts.

    pigeon numbers add +E164 --account AC… [--no-sms] [--sms-url URL]   provision a number
    pigeon numbers add 12345 --country US --account AC…                 a short code, with its country
    pigeon numbers country 12345 US                                      mend a short code's country
    pigeon numbers list [--account AC…]                                  every account's, or one's

Numbers free to buy are `pigeon inventory` (pigeon/cli_inventory.py). `pigeon.cli` mounts
`numbers_app`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from pigeon.app import numbers as number_use
from pigeon.cli_store import fail, open_store
from pigeon.cli_tables import print_table, whole
from pigeon.domain.errors import ApiError
from pigeon.ports import SystemClock
from pigeon.store import accounts as account_store
from pigeon.store import numbers as number_store

numbers_app = typer.Typer(help="Phone numbers on accounts.", no_args_is_help=True)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@numbers_app.command("add")
def numbers_add(
    phone_number: Annotated[str, typer.Argument(help="E.164 number or short code.")],
    account: Annotated[str, typer.Option("--account")],
    sms: Annotated[bool, typer.Option("--sms/--no-sms", help="SMS-capable.")] = True,
    mms: Annotated[bool, typer.Option("--mms/--no-mms")] = True,
    voice: Annotated[bool, typer.Option("--voice/--no-voice")] = True,
    country: Annotated[
        str | None,
        typer.Option(
            "--country",
            help="ISO country (US, GB …): required for a short code, which sends to and hears from that country"
            " only; a long code's is its number's.",
        ),
    ] = None,
    sms_url: Annotated[str | None, typer.Option("--sms-url")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Provision a number on an account."""
    db = open_store()
    try:
        with db.write() as conn:
            if account_store.get_account(conn, account) is None:
                raise ApiError(20404, f"Account {account} was not found", status=404)
            settings = number_use.settings_from_params({"SmsUrl": sms_url} if sms_url else {})
            row = number_use.provision(
                conn,
                account_sid=account,
                phone_number=phone_number,
                now=clock.now(),
                sms=sms,
                mms=mms,
                voice=voice,
                iso_country=country,
                settings=settings,
            )
    except ApiError as exc:
        raise fail(exc) from exc
    if as_json:
        _print_json(_number_view(row))
    else:
        out.print(f"{row['phone_number']}  {row['sid']}  on {row['account_sid']}", highlight=False)


def _number_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": row["sid"],
        "account_sid": row["account_sid"],
        "phone_number": row["phone_number"],
        "friendly_name": row["friendly_name"],
        "type": row["number_type"],
        "iso_country": row["iso_country"],
        "capabilities": {"sms": row["sms_capable"], "mms": row["mms_capable"], "voice": row["voice_capable"]},
        "sms_url": row["sms_url"],
        "sms_method": row["sms_method"],
        "sms_fallback_url": row["sms_fallback_url"],
        "messaging_service_sid": row["messaging_service_sid"],
    }


@numbers_app.command("country")
def numbers_country(
    short_code: Annotated[str, typer.Argument(help="The short code.")],
    country: Annotated[str, typer.Argument(help="Its ISO country (US, GB …).")],
    as_json: JsonFlag = False,
) -> None:
    """Bind a short code to its country: it sends to and hears from that country only. Mends a
    short code added without one (or with a misspelt one) before the country was required."""
    db = open_store()
    try:
        with db.write() as conn:
            row = number_use.set_short_code_country(conn, short_code, country, clock.now())
    except ApiError as exc:
        raise fail(exc) from exc
    if as_json:
        _print_json(_number_view(row))
    else:
        out.print(f"{row['phone_number']}  {row['sid']}  country {row['iso_country']}", highlight=False)


@numbers_app.command("list")
def numbers_list(account: Annotated[str | None, typer.Option("--account")] = None, as_json: JsonFlag = False) -> None:
    """Numbers on every account, or on one."""
    db = open_store()
    with db.read() as conn:
        rows = [_number_view(r) for r in number_store.list_numbers(conn, account_sid=account)]
    if as_json:
        _print_json(rows)
        return
    table = Table(
        whole("phone_number"), whole("sid"), whole("account_sid"), "type", "sms", Column("sms_url", overflow="fold")
    )
    for r in rows:
        table.add_row(
            r["phone_number"], r["sid"], r["account_sid"], r["type"], str(r["capabilities"]["sms"]), r["sms_url"] or ""
        )
    print_table(out, table)
