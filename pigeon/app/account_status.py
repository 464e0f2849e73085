"""Changing an account's status: a parent's change of its subaccount's (the API's Account
update) and an operator's of any account (`pigeon accounts status`).

Who suspended an account is kept with it (`suspended_by`): a parent's credentials change
nothing about a subaccount the operator suspended (21478, as on Twilio for an account that
Twilio suspended), so that they cannot undo it; the operator alone makes it active again.

Closing is for good (21479 for anything else afterwards), and it releases the account's
numbers in the same transaction, as Twilio releases a closed subaccount's: each as its
IncomingPhoneNumbers DELETE would (`pigeon.app.numbers.release_all`), so that the numbers go
back to the inventory instead of staying on an account nobody can act for. Closing a main
account closes its subaccounts with it for good (`accounts.standing`: a closed account is
never reopened), whether or not their own status is set too, so theirs are released as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import numbers
from pigeon.app.accounts import check_active, check_status, existing
from pigeon.domain.errors import ApiError
from pigeon.store import accounts as store

Row = dict[str, Any]

#: `suspended_by` of an account suspended by the operator, and by its parent through the API.
OPERATOR = "operator"
PARENT = "parent"


def update_account(
    conn: Connection, acting_sid: str, target: Row, *, friendly_name: str | None, status: str | None, now: datetime
) -> Row:
    """`acting_sid`'s update of `target` (itself or one of its subaccounts, per `authorize`).
    Only a parent changes a status, its subaccount's: an account never changes its own (a
    suspended one would undo its suspension), nor a parent one the operator suspended (21478).
    A suspended or closed account keeps its name (20005), unless its parent makes it active
    in the same request. Everything is checked before anything changes."""
    values: dict[str, Any] = {}
    if status is not None:
        check_status(status)
        if target["sid"] == acting_sid:
            if target["owner_account_sid"] == target["sid"]:
                raise ApiError(21477, "The status of a main account cannot be changed through the API.")
            raise ApiError(
                20003, "Permission denied: only its main account can change a subaccount's status.", status=403
            )
        if target.get("parent_status") == "suspended":
            raise ApiError(21476, "A subaccount's status cannot be changed while its main account is suspended.")
        if target["status"] == "suspended" and target.get("suspended_by") == OPERATOR:
            raise ApiError(
                21478,
                "This subaccount was suspended by the operator of this Pigeon installation: its status "
                "cannot be changed through the API until the operator makes it active again.",
            )
        _check_status_change(target, status)
        values.update(_status_values(status, PARENT))
    if friendly_name is not None:
        if len(friendly_name) > 64:
            raise ApiError(20422, "FriendlyName may be at most 64 characters long.")
        if values.get("status") != "active":
            check_active(target)
        values["friendly_name"] = friendly_name
    if values:
        store.update_account(conn, target["sid"], now=now, **values)
    if values.get("status") == "closed":
        numbers.release_all(conn, target["sid"], now)
    return store.get_account(conn, target["sid"]) or target


def set_status(conn: Connection, account_sid: str, status: str, *, now: datetime, with_subaccounts: bool) -> list[Row]:
    """An operator's change of an account's status, main accounts included (the API lets a
    parent change only its subaccounts'): the account, and with `with_subaccounts` each of its
    subaccounts that is not closed. A closed account is never reopened (21479). Returns the
    accounts changed, as they are now."""
    check_status(status)
    account = existing(conn, account_sid)
    _check_status_change(account, status)
    subaccounts = [sub for sub in store.list_accounts(conn, visible_to=account_sid) if sub["sid"] != account_sid]
    targets = [account]
    if with_subaccounts:
        targets += [sub for sub in subaccounts if sub["status"] != "closed"]
    for target in targets:
        store.update_account(conn, target["sid"], now=now, **_status_values(status, OPERATOR))
    if status == "closed":
        # A main account's subaccounts are closed with it, their own status set or not.
        for closed in [account, *subaccounts]:
            numbers.release_all(conn, closed["sid"], now)
    return [existing(conn, target["sid"]) for target in targets]


def _status_values(status: str, by: str) -> dict[str, Any]:
    return {"status": status, "suspended_by": by if status == "suspended" else None}


def _check_status_change(account: Row, status: str) -> None:
    """21479 for reopening a closed account (the API's update and an operator's alike)."""
    if account["status"] == "closed" and status != "closed":
        raise ApiError(21479, "A closed account cannot be reopened.")
