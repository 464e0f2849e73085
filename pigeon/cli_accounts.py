"""`pigeon accounts` and `pigeon keys`: accounts and their credentials.

    pigeon accounts create [--friendly-name X]   a top-level account; its auth token printed once
    pigeon accounts list [--show-tokens]         every account, subaccounts included
    pigeon keys create --account AC…             an API key; its secret printed once
    pigeon keys list [--account AC…]             the keys, never their secrets
    pigeon keys revoke SK…                       a key stops working at once

What only an operator changes about an account (`geo`, `short-code-inbound`, `status`,
`rotate-token`) is in pigeon/cli_account_rules.py and mounted here under `pigeon accounts`.
`pigeon.cli` mounts `accounts_app` and `keys_app`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from pigeon.app import accounts as account_use
from pigeon.cli_account_rules import geo_cmd, rotate_token_cmd, short_code_inbound_cmd, status_cmd
from pigeon.cli_store import fail, open_store
from pigeon.cli_tables import print_table, whole
from pigeon.domain.errors import ApiError
from pigeon.ports import SystemClock
from pigeon.store import accounts as account_store

accounts_app = typer.Typer(help="Accounts and their credentials.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


# -- accounts ------------------------------------------------------------------------------


@accounts_app.command("create")
def accounts_create(
    friendly_name: Annotated[str | None, typer.Option("--friendly-name")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a top-level account; prints its SID and auth token."""
    db = open_store()
    with db.write() as conn:
        row = account_use.create_account(conn, friendly_name=friendly_name, now=clock.now())
    if as_json:
        _print_json({k: row[k] for k in ("sid", "auth_token", "friendly_name", "status")})
    else:
        out.print(f"Account SID  {row['sid']}\nAuth token   {row['auth_token']}", highlight=False)


@accounts_app.command("list")
def accounts_list(
    as_json: JsonFlag = False,
    show_tokens: Annotated[bool, typer.Option("--show-tokens", help="Include auth tokens.")] = False,
) -> None:
    """Every account, subaccounts included."""
    db = open_store()
    with db.read() as conn:
        rows = account_store.list_accounts(conn)
    fields = ["sid", "friendly_name", "status", "owner_account_sid", "date_created"]
    if show_tokens:
        fields.insert(1, "auth_token")
    if as_json:
        _print_json([{k: r[k] for k in fields} for r in rows])
        return
    # The auth token is recovered from here (the first start prints it once): it and the SIDs
    # are printed whole whatever the terminal's width (pigeon/cli_tables.py).
    token = [whole("auth token")] if show_tokens else []
    table = Table(whole("sid"), *token, "name", "status", whole("owner"), Column("created", no_wrap=True))
    for r in rows:
        cells = [r["sid"], *([r["auth_token"]] if show_tokens else []), r["friendly_name"], r["status"]]
        table.add_row(*cells, r["owner_account_sid"], str(r["date_created"])[:19])
    print_table(out, table)


accounts_app.command("geo")(geo_cmd)
accounts_app.command("short-code-inbound")(short_code_inbound_cmd)
accounts_app.command("status")(status_cmd)
accounts_app.command("rotate-token")(rotate_token_cmd)


# -- keys ----------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="The account SID the key acts for.")],
    friendly_name: Annotated[str, typer.Option("--friendly-name")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; its secret is printed once and stored only as a hash."""
    db = open_store()
    try:
        with db.write() as conn:
            row = account_use.create_key(conn, account_sid=account, friendly_name=friendly_name, now=clock.now())
    except ApiError as exc:
        raise fail(exc) from exc
    if as_json:
        _print_json({"sid": row["sid"], "secret": row["secret"], "account_sid": account})
    else:
        out.print(f"Key SID  {row['sid']}\nSecret   {row['secret']}", highlight=False)


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account", help="One account's keys only.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """API keys (never their secrets), oldest first."""
    db = open_store()
    with db.read() as conn:
        rows = account_use.list_keys(conn, account)
    if as_json:
        _print_json(rows)
        return
    every = account is None  # the account column only when it varies (two whole SIDs fill 80 columns)
    columns = [whole("sid"), *([whole("account")] if every else [])]
    table = Table(*columns, "name", Column("created", no_wrap=True))
    for r in rows:
        cells = [r["sid"], *([r["account_sid"]] if every else []), r["friendly_name"], str(r["date_created"])[:19]]
        table.add_row(*cells)
    print_table(out, table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's SID (SK…).")],
    as_json: JsonFlag = False,
) -> None:
    """Delete an API key: requests and console sessions signed with it fail from now on."""
    db = open_store()
    try:
        with db.write() as conn:
            found = account_use.revoke_key(conn, None, key, f"API key {key}")
    except ApiError as exc:
        raise fail(exc) from exc
    if as_json:
        _print_json({"sid": key, "account_sid": found["account_sid"], "revoked": True})
    else:
        out.print(f"{key} revoked: it no longer works for {found['account_sid']}", highlight=False)
