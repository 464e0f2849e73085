"""What only an operator changes about an account, under `pigeon accounts` (`pigeon.cli_accounts`
mounts the commands):

- `geo AC…`: the countries it may send to (pigeon/domain/geo.py). `--allow US,CA` gives the
  account a list of its own, `--any` lets it send anywhere (a subaccount beyond its parent's
  list), `--inherit` removes its own list so that it follows its parent's again.
- `short-code-inbound AC… --on|--off`: whether its long codes take texts from short codes
  (of their own country only; pigeon/app/inbound.py).
- `status AC… --suspend|--activate|--close`: any account's status, a main account's too (the
  API lets a parent change only its subaccounts'), with `--with-subaccounts` theirs as well.
- `rotate-token AC…`: a new auth token, for one that leaked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pigeon.cli_store import open_store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

T = TypeVar("T")


def _write(action: Callable[[Connection], T]) -> T:
    """`action` in one write transaction of the configured store; an ApiError it raises (an
    unknown account, a closed one) is printed, and the command exits with status 1."""
    from pigeon.domain.errors import ApiError

    db = open_store()
    try:
        with db.write() as conn:
            return action(conn)
    except ApiError as exc:
        err.print(f"[red]{escape(exc.message)}[/red]", markup=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()


def geo_cmd(
    account: Annotated[str, typer.Argument(help="The account SID.")],
    allow: Annotated[
        str | None,
        typer.Option("--allow", help="Only these countries from now on: ISO 3166 codes, e.g. 'US,CA'."),
    ] = None,
    any_country: Annotated[bool, typer.Option("--any", help="Any country.")] = False,
    inherit: Annotated[
        bool, typer.Option("--inherit", help="No list of its own: its parent's (any, for a main account).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Geo permissions: the countries an account may send to. Sends to other countries (and
    to non-geographic numbers, such as +800 and +882, whenever a list applies) are refused
    with 21408 and cost nothing; messages to them that are still queued fail with 21408 when a
    dispatcher reaches them."""
    from pigeon.app import accounts
    from pigeon.domain import geo

    if sum((allow is not None, any_country, inherit)) > 1:
        err.print("[red]--allow, --any and --inherit each set the list: give one.[/red]", markup=True)
        raise typer.Exit(2)
    new: str | None = geo.ANY if any_country else None  # None with --inherit: no list of its own
    if allow is not None:
        try:
            new = geo.parse_countries(allow)
        except ValueError as exc:
            err.print(f"[red]--allow: {escape(str(exc))}[/red]", markup=True)
            raise typer.Exit(2) from exc

    def change_or_show(conn: Connection) -> tuple[dict[str, Any], frozenset[str] | None]:
        if allow is not None or any_country or inherit:
            row = accounts.set_allowed_countries(conn, account, new, now=datetime.now(UTC))
        else:
            row = accounts.existing(conn, account)
        return row, accounts.sendable_countries(conn, row)

    row, allowed = _write(change_or_show)
    view = _view(row, allowed)
    if as_json:
        out.print_json(json.dumps(view))
    else:
        out.print(f"{account} may send to {view['summary']}", highlight=False)


def _view(row: dict[str, Any], allowed: frozenset[str] | None) -> dict[str, Any]:
    from pigeon.domain.geo import ANY

    own = row.get("allowed_countries")
    parent = None if row["owner_account_sid"] == row["sid"] else row["owner_account_sid"]
    if own is not None:
        source = "its own setting" if own == ANY else "its own list"
    elif parent is None:
        source = "no list set"
    else:
        source = f"as its parent {parent} may"
    countries = sorted(allowed) if allowed is not None else None
    return {
        "account_sid": row["sid"],
        "countries": countries,  # null: any country
        "own": own,
        "parent_account_sid": parent,
        "summary": f"{', '.join(countries) if countries else 'any country'} ({source})",
    }


def short_code_inbound_cmd(
    account: Annotated[str, typer.Argument(help="The account SID.")],
    on: Annotated[
        bool | None, typer.Option("--on/--off", help="Take texts from short codes, or stop taking them.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether the account's long codes take texts from short codes (off by default, as on
    Twilio: short codes usually text only their own subscribers). Only from short codes of the
    long code's own country; the others are kept as unroutable. Shows the setting without
    --on/--off."""
    from pigeon.store import accounts as account_store

    db = open_store()
    try:
        with db.write() as conn:
            if on is not None and account_store.get_account(conn, account) is not None:
                account_store.update_account(conn, account, now=datetime.now(UTC), allow_short_code_inbound=on)
            row = account_store.get_account(conn, account)
    finally:
        db.dispose()
    if row is None:
        err.print(f"[red]Account {escape(account)} was not found[/red]", markup=True)
        raise typer.Exit(1)
    allowed = bool(row["allow_short_code_inbound"])
    if as_json:
        out.print_json(json.dumps({"account_sid": account, "allow_short_code_inbound": allowed}))
    else:
        taken = "take" if allowed else "do not take"
        out.print(f"{account}: its long codes {taken} texts from short codes", highlight=False)


def status_cmd(
    account: Annotated[str, typer.Argument(help="The account SID.")],
    suspend: Annotated[bool, typer.Option("--suspend", help="Suspend it: no sends, queued ones fail (30002).")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Make a suspended account active again.")] = False,
    close: Annotated[bool, typer.Option("--close", help="Close it for good: its credentials stop working.")] = False,
    with_subaccounts: Annotated[
        bool,
        typer.Option(
            "--with-subaccounts",
            help="Set its subaccounts' own status too (those not closed); without it they are held "
            "only while the main account is.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """An account's status, set by an operator: a suspended account's requests are refused
    (20005) and its queued messages fail when a dispatcher reaches them (30002); a closed one's
    credentials and API keys stop working, and it is never reopened. Shows the status without
    an option. A main account's suspension or closing holds its subaccounts too, as on
    Twilio; each keeps its own status (set it too with --with-subaccounts), which counts again
    once the main account is active."""
    from pigeon.app import account_status, accounts
    from pigeon.store import accounts as account_store

    chosen = [name for name, on in (("suspended", suspend), ("active", activate), ("closed", close)) if on]
    if len(chosen) > 1:
        err.print("[red]--suspend, --activate and --close each set the status: give one.[/red]", markup=True)
        raise typer.Exit(2)

    def change_or_show(conn: Connection) -> list[dict[str, Any]]:
        if chosen:
            return account_status.set_status(
                conn, account, chosen[0], now=datetime.now(UTC), with_subaccounts=with_subaccounts
            )
        accounts.existing(conn, account)
        return account_store.list_accounts(conn, visible_to=account)

    rows = _write(change_or_show)
    view = [{"account_sid": r["sid"], "status": r["status"], "owner_account_sid": r["owner_account_sid"]} for r in rows]
    if as_json:
        out.print_json(json.dumps(view))
        return
    for r in view:
        sub = "" if r["owner_account_sid"] == r["account_sid"] else f" (subaccount of {r['owner_account_sid']})"
        out.print(f"{r['account_sid']}{sub}: {r['status']}", highlight=False, soft_wrap=True)


def rotate_token_cmd(
    account: Annotated[str, typer.Argument(help="The account SID.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Give the account a new auth token, printed this once. The old one stops working at
    once: requests made with it get 20003, console sessions signed in with it end, and
    webhooks are signed with the new one from now on (update the applications that check
    X-Twilio-Signature). API keys keep working."""
    from pigeon.app import accounts

    row = _write(lambda conn: accounts.rotate_auth_token(conn, account, now=datetime.now(UTC)))
    if as_json:
        out.print_json(json.dumps({"account_sid": row["sid"], "auth_token": row["auth_token"]}))
    else:
        out.print(f"Account SID  {row['sid']}\nAuth token   {row['auth_token']}", highlight=False)
        err.print("The old token no longer works; webhooks are signed with the new one from now on.")
