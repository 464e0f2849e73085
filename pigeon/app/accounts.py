"""Accounts, subaccounts, API keys and who may act on which account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import geo
from pigeon.domain.errors import ApiError, AuthenticationError
from pigeon.domain.sids import Prefix, is_sid
from pigeon.domain.signatures import equal_secrets
from pigeon.store import accounts as store

Row = dict[str, Any]

ACCOUNT_STATUSES = frozenset({"active", "suspended", "closed"})
#: How far each status stops an account, for `standing`.
_STOPS = {"active": 0, "suspended": 1, "closed": 2}


def standing(account: Mapping[str, Any]) -> str:
    """The status an account acts with: its own, or its main account's where that stops more.
    As on Twilio, suspending a main account suspends its subaccounts with it, and closing it
    closes them; each keeps its own status, which counts again when the main account is
    active. `account` is a row of `store.get_account` (which carries `parent_status`)."""
    own, parent = str(account["status"]), account.get("parent_status")
    return parent if parent is not None and _STOPS.get(parent, 0) > _STOPS.get(own, 0) else own


def check_active(account: Mapping[str, Any]) -> None:
    """20005 unless the account may send and change resources: it and its main account are
    active. The message says which of the two is not."""
    if standing(account) == "active":
        return
    if account["status"] != "active":
        why = f"This account is {account['status']}; it cannot send or change resources."
    else:
        why = (
            f"This account's main account {account['owner_account_sid']} is {account['parent_status']}; "
            "its subaccounts cannot send or change resources until it is active."
        )
    raise ApiError(20005, why, status=403)


def authenticate(conn: Connection, username: str, password: str) -> str:
    """The account SID that these Basic credentials act as, or AuthenticationError."""
    return str(authenticate_account(conn, username, password)["sid"])


def authenticate_account(conn: Connection, username: str, password: str) -> Row:
    """The account that these Basic credentials act as, or AuthenticationError."""
    if is_sid(username, Prefix.ACCOUNT):
        account = store.get_account(conn, username)
        if account is None or not _token_matches(password, account):
            raise AuthenticationError()
        if standing(account) == "closed":  # its own, or its main account's
            raise AuthenticationError()
        return account
    if is_sid(username, Prefix.API_KEY):
        account_sid = store.account_for_key(conn, username, password)
        if account_sid is None:
            raise AuthenticationError()
        # Closing an account retires its keys with its auth token.
        owner = store.get_account(conn, account_sid)
        if owner is None or standing(owner) == "closed":
            raise AuthenticationError()
        return owner
    raise AuthenticationError("Authentication Error - invalid username")


def refuse_api_key(username: str, what: str) -> None:
    """20003 (401) when `username` is an API key's SID. What an account's credentials are made
    with (its keys), and the Account itself (it shows the auth token, makes subaccounts and
    closes them, for good), are for the account's auth token or its parent's: a leaked key
    must not be able to make itself new credentials. `what` completes "API keys cannot ..."."""
    if is_sid(username, Prefix.API_KEY):
        raise AuthenticationError(f"API keys cannot {what}: use the account's auth token.")


def authorize(
    conn: Connection,
    acting_sid: str,
    target_sid: str,
    path: str,
    *,
    require_active: bool = True,
    acting: Row | None = None,
) -> Row:
    """The target account, if `acting_sid` may act on it: itself, or one of its subaccounts.
    A subaccount never reaches its parent or its siblings.

    `require_active=False` is for reads (an account's history stays readable once it is
    suspended or closed, as on Twilio) and for the Account resource itself: a parent must
    still see a suspended subaccount and be able to reactivate it.

    `acting`: the acting account's row, when the caller has just read it (authentication
    does), so that an account acting on itself costs no second read."""
    if not is_sid(target_sid, Prefix.ACCOUNT):
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    target = acting if acting is not None and acting["sid"] == target_sid else store.get_account(conn, target_sid)
    if target is None:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    if target_sid != acting_sid and target["owner_account_sid"] != acting_sid:
        raise ApiError(20003, "Permission denied: these credentials cannot act on that account.", status=403)
    if require_active:
        check_active(target)
    return target


def require_active(conn: Connection, account_sid: str) -> None:
    """20005 unless the account may send and change resources (its own status and its main
    account's): for the console's changes, which do not pass through `authorize`."""
    check_active(existing(conn, account_sid))


def create_account(conn: Connection, *, friendly_name: str | None, now: datetime, owner_sid: str | None = None) -> Row:
    name = (friendly_name or "").strip() or f"SubAccount Created at {now:%Y-%m-%d %I:%M %p}"
    if owner_sid is None and not friendly_name:
        name = "Pigeon account"
    if len(name) > 64:
        raise ApiError(20422, "FriendlyName may be at most 64 characters long.")
    return store.create_account(conn, friendly_name=name, now=now, owner_sid=owner_sid)


def create_subaccount(conn: Connection, acting_sid: str, *, friendly_name: str | None, now: datetime) -> Row:
    """A subaccount of `acting_sid`. Only a main account may make one: a subaccount's own
    subaccount would be out of its main account's reach (`authorize` looks one level down).
    A suspended one makes none (20005)."""
    acting = store.get_account(conn, acting_sid)
    if acting is None or acting["owner_account_sid"] != acting_sid:
        raise ApiError(20003, "Permission denied: a subaccount cannot create subaccounts.", status=403)
    check_active(acting)
    return create_account(conn, friendly_name=friendly_name, now=now, owner_sid=acting_sid)


def check_status(status: str) -> None:
    """21475 unless `status` is one an account can have (a filter's as well as a change's)."""
    if status not in ACCOUNT_STATUSES:
        raise ApiError(21475, f"Status {status!r} is not one of active, suspended, closed.")


def list_visible(conn: Connection, acting_sid: str, *, friendly_name: str | None, status: str | None) -> list[Row]:
    """`acting_sid` and its subaccounts. A Status filter that no account can match is refused
    (21475), as an update to it is: an empty list would read as "none of them is"."""
    if status is not None:
        check_status(status)
    return store.list_accounts(conn, visible_to=acting_sid, friendly_name=friendly_name, status=status)


def existing(conn: Connection, account_sid: str) -> Row:
    """The account's row, or 20404 (for the operator's commands, which name any account)."""
    account = store.get_account(conn, account_sid)
    if account is None:
        raise ApiError(20404, f"Account {account_sid} was not found", status=404)
    return account


def _token_matches(password: str, account: Row) -> bool:
    """The account's auth token or, while it has one, its secondary token. Both compared,
    whatever the first gives, so that the time taken does not tell which one matched."""
    secondary = account.get("secondary_auth_token")
    primary_ok = equal_secrets(password, account["auth_token"])
    secondary_ok = equal_secrets(password, secondary) if secondary else False
    return primary_ok or secondary_ok


def own_account(conn: Connection, username: str, password: str) -> Row:
    """The account whose own auth token (either one) these credentials are: what may change
    its auth tokens. An API key may not, nor a parent for its subaccount."""
    refuse_api_key(username, "manage auth tokens")  # 401, as on Accounts and Keys
    account = authenticate_account(conn, username, password)
    # A suspended account changes nothing, its credentials included, until it is active again.
    return authorize(conn, account["sid"], account["sid"], "/v1/AuthTokens", acting=account)


def create_secondary_token(conn: Connection, account: Row, *, now: datetime) -> Row:
    """A new secondary auth token for the account, replacing any it had."""
    store.update_account(
        conn,
        account["sid"],
        now=now,
        secondary_auth_token=store.new_auth_token(),
        secondary_auth_token_created=now,
    )
    return existing(conn, account["sid"])


def delete_secondary_token(conn: Connection, account: Row, *, now: datetime) -> None:
    if not account.get("secondary_auth_token"):
        raise ApiError(20404, "This account has no secondary auth token.", status=404)
    store.update_account(conn, account["sid"], now=now, secondary_auth_token=None, secondary_auth_token_created=None)


def promote_secondary_token(conn: Connection, account: Row, *, now: datetime) -> Row:
    """The secondary token becomes the account's only auth token: the one before stops working
    for requests and console sessions, and webhooks are signed with the new one from now on."""
    secondary = account.get("secondary_auth_token")
    if not secondary:
        raise ApiError(
            20422,
            "This account has no secondary auth token to promote: create one first (POST /v1/AuthTokens/Secondary).",
        )
    store.update_account(
        conn,
        account["sid"],
        now=now,
        auth_token=secondary,
        secondary_auth_token=None,
        secondary_auth_token_created=None,
    )
    return existing(conn, account["sid"])


def _refuse_closed(account: Mapping[str, Any]) -> None:
    """21479 for new credentials of a closed account, or of a subaccount of a closed main
    account: `authenticate_account` would never accept them."""
    if account["status"] == "closed":
        raise ApiError(21479, "A closed account cannot be reopened, nor given new credentials.")
    if standing(account) == "closed":
        raise ApiError(
            21479,
            f"This account's main account {account['owner_account_sid']} is closed: "
            "its subaccounts cannot be given new credentials.",
        )


def rotate_auth_token(conn: Connection, account_sid: str, *, now: datetime) -> Row:
    """Give the account a new auth token. The old one stops working at once: for requests, for
    the console's sessions signed in with it, and for signing webhooks, which from now on are
    signed with the new one; a secondary token is removed. API keys are not touched."""
    account = existing(conn, account_sid)
    _refuse_closed(account)
    # A secondary token goes too: whoever had the leaked token could have made one.
    store.update_account(
        conn,
        account_sid,
        now=now,
        auth_token=store.new_auth_token(),
        secondary_auth_token=None,
        secondary_auth_token_created=None,
    )
    return existing(conn, account_sid)


def _key_name(friendly_name: str) -> str:
    if len(friendly_name) > 64:  # its column's size: PostgreSQL refuses more, SQLite kept it
        raise ApiError(20422, "FriendlyName may be at most 64 characters long.")
    return friendly_name


def create_key(conn: Connection, *, account_sid: str, friendly_name: str, now: datetime) -> Row:
    """A new API key of the account; none for a closed one (21479), which it would never
    authenticate for."""
    _refuse_closed(existing(conn, account_sid))
    return store.create_api_key(conn, account_sid=account_sid, friendly_name=_key_name(friendly_name), now=now)


def list_keys(conn: Connection, account_sid: str | None, *, offset: int = 0, limit: int | None = None) -> list[Row]:
    """An account's keys (every account's with None), oldest first, without their hashes."""
    return store.list_api_keys(conn, account_sid, offset=offset, limit=limit)


def key_of(conn: Connection, account_sid: str | None, key_sid: str, path: str) -> Row:
    """An account's key (any account's with None), without its hash; 20404 for a key of
    another account or none."""
    key = store.get_api_key(conn, key_sid)
    if key is None or account_sid not in (None, key["account_sid"]):
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return {k: key[k] for k in ("sid", "account_sid", "friendly_name", "date_created", "date_updated")}


def rename_key(conn: Connection, account_sid: str, key_sid: str, path: str, friendly_name: str, now: datetime) -> Row:
    key = key_of(conn, account_sid, key_sid, path)
    store.rename_api_key(conn, key_sid, _key_name(friendly_name), now=now)
    return {**key, "friendly_name": friendly_name, "date_updated": now}


def revoke_key(conn: Connection, account_sid: str | None, key_sid: str, path: str) -> Row:
    """Delete a key of the account (of any with None): requests and console sessions signed
    with it fail from now on. Returns the key as it was."""
    key = key_of(conn, account_sid, key_sid, path)
    store.delete_api_key(conn, key_sid)
    return key


@dataclass(frozen=True)
class GeoPermissions:
    """The countries an account may send to, and whose setting that is."""

    #: None: any country.
    allowed: frozenset[str] | None
    #: The account whose stored setting applies (its own, else its parent's list); None when
    #: none does, and the account sends anywhere.
    set_by: str | None


def geo_permissions(conn: Connection, account: Mapping[str, Any]) -> GeoPermissions:
    """`account`'s geo permissions: its own setting, else its parent's list, else any country."""
    own = account.get("allowed_countries")
    if own is not None:
        return GeoPermissions(geo.effective(own, None), account["sid"])
    if account["owner_account_sid"] != account["sid"]:
        if "parent_allowed_countries" in account:  # a row of store.get_account: no second read
            parents = account["parent_allowed_countries"]
        else:
            owner = store.get_account(conn, account["owner_account_sid"])
            parents = owner.get("allowed_countries") if owner else None
        allowed = geo.effective(None, parents)
        if allowed is not None:
            return GeoPermissions(allowed, account["owner_account_sid"])
    return GeoPermissions(None, None)


def sendable_countries(conn: Connection, account: Mapping[str, Any]) -> frozenset[str] | None:
    """The countries `account` may send to (None: any): its own list, else its parent's."""
    return geo_permissions(conn, account).allowed


def set_allowed_countries(conn: Connection, account_sid: str, countries: str | None, *, now: datetime) -> Row:
    """Give `account_sid` its own list of countries (`geo.parse_countries`'s form; `geo.ANY`
    for any country), or with None let it follow its parent's again (any, for a top-level
    account). Messages still queued are held to the new list when a dispatcher takes
    them (`pigeon.app.dispatch_claim`: failed with 21408)."""
    existing(conn, account_sid)
    store.update_account(conn, account_sid, now=now, allowed_countries=countries)
    return existing(conn, account_sid)
