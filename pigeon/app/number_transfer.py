"""Moving a number between the accounts of one family: Twilio's IncomingPhoneNumbers update with
AccountSid.

Who may move what. Only a main account's credentials (its auth token, or one of its API keys)
move numbers, and only among the main account and its subaccounts: from itself to a
subaccount, from a subaccount back, or from one subaccount to another. A subaccount's own
credentials move nothing (21474), to its main account or a sibling alike. The account named
must be an account SID (21470), the main account or one of its subaccounts (21471 otherwise:
an account of another family is not told apart from one that does not exist) and active
(21472). A refused move changes nothing, the request's other settings included; naming the
number's own account is no move.

What moves. The number keeps its SID and settings (URLs, methods, name, capabilities) on its
new account, and its date_created; its held_since becomes the time of the move (the doctor shows
the new account only the texts kept as unroutable since it holds the number). What does not move with it (`number_opt_outs`, `sender_exit`):

* its Messaging Service, which is the old account's: the number leaves the pool, keeping the
  service's opt-outs as its own, on the new account;
* its opt-outs, which are the old account's rows: the number's own are copied to the new
  account, so whoever said STOP to it is not texted from it by its new owner either (the old
  account keeps its rows, the history of its own sends);
* the old account's messages still waiting to go from it, which fail with 21606
  (``number_transferred`` on their timelines), as on a release.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import accounts, number_opt_outs, sender_exit
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, is_sid
from pigeon.store import accounts as account_store
from pigeon.store import numbers as number_store

Row = dict[str, Any]


def check(conn: Connection, *, acting_sid: str, to_account_sid: str) -> None:
    """Raise the ApiError that refuses moving a number to `to_account_sid` with `acting_sid`'s
    credentials; nothing when the move is allowed (the number's own account was authorized)."""
    acting = account_store.get_account(conn, acting_sid)
    if acting is None or acting["owner_account_sid"] != acting_sid:
        raise ApiError(
            21474,
            "Only the main account's credentials can move a number to another account: these are a subaccount's.",
        )
    if not is_sid(to_account_sid, Prefix.ACCOUNT):
        raise ApiError(21470, f"AccountSid {to_account_sid!r} is not an account SID.")
    target = account_store.get_account(conn, to_account_sid)
    if target is None or target["owner_account_sid"] != acting_sid:
        raise ApiError(21471, f"The account {to_account_sid} is neither this main account nor one of its subaccounts.")
    if (status := accounts.standing(target)) != "active":
        raise ApiError(21472, f"The account {to_account_sid} is {status}: a number can only move to an active account.")


def move(conn: Connection, number: Mapping[str, Any], *, to_account_sid: str, now: datetime) -> int:
    """Move `number` (its row as it is now, on its old account) to `to_account_sid`, which
    `check` allowed. Returns how many of the old account's messages from it failed."""
    failed = sender_exit.fail_waiting(
        conn, number, now=now, kind="number_transferred", why="was moved to another account"
    )
    number_opt_outs.carry_opt_outs(conn, number, to_account_sid=to_account_sid)
    number_store.update_number(
        conn, str(number["sid"]), now=now, account_sid=to_account_sid, messaging_service_sid=None, held_since=now
    )
    return failed
