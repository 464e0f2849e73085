"""Accounts and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import Prefix, new_sid
from pigeon.store.prepared import Prepared
from pigeon.store.tables import accounts, api_keys, event_subscriptions

Row = dict[str, Any]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_auth_token() -> str:
    return secrets.token_hex(16)


def create_account(
    conn: Connection,
    *,
    friendly_name: str,
    now: datetime,
    owner_sid: str | None = None,
    sid: str | None = None,
    auth_token: str | None = None,
) -> Row:
    """A new account; `sid` and `auth_token` are made unless given (an account brought over
    from elsewhere keeps its credentials)."""
    sid = sid or new_sid(Prefix.ACCOUNT)
    row = {
        "sid": sid,
        "owner_account_sid": owner_sid or sid,
        "friendly_name": friendly_name,
        "auth_token": auth_token or new_auth_token(),
        "status": "active",
        "type": "Full",
        "date_created": now,
        "date_updated": now,
    }
    conn.execute(accounts.insert().values(**row))
    return row


#: An account's main account, and the accounts each with theirs (none for a main account,
#: whose owner is itself): what a subaccount is also held to.
parent = accounts.alias("parent")
with_parent = accounts.outerjoin(
    parent, sa.and_(parent.c.sid == accounts.c.owner_account_sid, parent.c.sid != accounts.c.sid)
)

# Built once: the API reads an account on every request, and building a statement costs more
# than running it. With its parent's status and geo list (None for a main account): a
# subaccount is held to both (`pigeon.app.accounts.standing`, `geo_permissions`). And whether
# it has an Event Streams subscription: a send from an account without one has no event to
# publish with its batch, which then reads no subscriptions (`pigeon.app.accept_batch`); the
# probe of event_subscriptions' account index inside this read measured about 1 µs on
# SQLite, against 15 µs for a query of its own per batch (PostgreSQL: a round trip).
_GET_ACCOUNT = Prepared(
    sa.select(
        accounts,
        parent.c.status.label("parent_status"),
        parent.c.allowed_countries.label("parent_allowed_countries"),
        sa.exists().where(event_subscriptions.c.account_sid == accounts.c.sid).label("streams_events"),
    )
    .select_from(with_parent)
    .where(accounts.c.sid == sa.bindparam("b_sid"))
)


def get_account(conn: Connection, sid: str) -> Row | None:
    """The account's row, with `parent_status` and `parent_allowed_countries` (None for a main
    account), and `streams_events`: whether it has an Event Streams subscription."""
    return _GET_ACCOUNT.first(conn, {"b_sid": sid})


def list_accounts(
    conn: Connection,
    *,
    visible_to: str | None = None,
    friendly_name: str | None = None,
    status: str | None = None,
) -> list[Row]:
    """Accounts, oldest first. `visible_to`: that account and its subaccounts only."""
    q = sa.select(accounts).order_by(accounts.c.date_created, accounts.c.sid)
    if visible_to is not None:
        q = q.where(sa.or_(accounts.c.sid == visible_to, accounts.c.owner_account_sid == visible_to))
    if friendly_name is not None:
        q = q.where(accounts.c.friendly_name == friendly_name)
    if status is not None:
        q = q.where(accounts.c.status == status)
    return [dict(r) for r in conn.execute(q).mappings()]


#: The PostgreSQL advisory lock that the first start's set-up queues on: the two-integer form,
#: in a key space of its own ("PIGE" in ASCII, 1), apart from the single-bigint locks of the migrations
#: and the webhook outbox.
_FIRST_RUN_LOCK = sa.text("SELECT pg_advisory_xact_lock(1346979653, 1)")


def lock_first_run(conn: Connection) -> None:
    """Queue the transaction behind any other process's first-start set-up, until it ends.
    Several `pigeon serve` starting together on an empty PostgreSQL all counted no account,
    all seeded the sample inventory, and all but one failed on its primary key. Once the lock
    is held, the count of accounts (read committed: a new snapshot per statement) sees what
    the one before committed. On SQLite a write transaction already holds the database's
    single write lock (BEGIN IMMEDIATE)."""
    if conn.dialect.name != "sqlite":
        conn.execute(_FIRST_RUN_LOCK)


def count_accounts(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one())


def update_account(conn: Connection, sid: str, *, now: datetime, **values: Any) -> None:
    conn.execute(accounts.update().where(accounts.c.sid == sid).values(date_updated=now, **values))


def end_console_sessions(conn: Connection, sid: str) -> None:
    """End every console session of the account (signed in before now): its sign-out count moves
    on, and a session is good only under the count it was signed in with."""
    conn.execute(
        accounts.update().where(accounts.c.sid == sid).values(console_sign_outs=accounts.c.console_sign_outs + 1)
    )


def end_key_console_sessions(conn: Connection, key_sid: str) -> None:
    """End every console session signed in with this API key, and no other: the key's own
    sign-out count moves on (the account's stays where it is)."""
    conn.execute(
        api_keys.update().where(api_keys.c.sid == key_sid).values(console_sign_outs=api_keys.c.console_sign_outs + 1)
    )


def create_api_key(conn: Connection, *, account_sid: str, friendly_name: str, now: datetime) -> Row:
    """A new key; the secret is returned once and only its hash is stored."""
    secret = secrets.token_urlsafe(32)
    row = {
        "sid": new_sid(Prefix.API_KEY),
        "account_sid": account_sid,
        "friendly_name": friendly_name,
        "secret_hash": hash_secret(secret),
        "date_created": now,
    }
    conn.execute(api_keys.insert().values(**row))
    return {**row, "secret": secret}


def account_for_key(conn: Connection, key_sid: str, secret: str) -> str | None:
    """The account a key belongs to, when the secret matches."""
    row = conn.execute(
        sa.select(api_keys.c.account_sid, api_keys.c.secret_hash).where(api_keys.c.sid == key_sid)
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
        return None
    return str(row.account_sid)


_KEY_VIEW = (
    api_keys.c.sid,
    api_keys.c.account_sid,
    api_keys.c.friendly_name,
    api_keys.c.date_created,
    api_keys.c.date_updated,
)


def list_api_keys(conn: Connection, account_sid: str | None, *, offset: int = 0, limit: int | None = None) -> list[Row]:
    """An account's keys (every account's with None), oldest first, without their hashes."""
    q = sa.select(*_KEY_VIEW).order_by(api_keys.c.date_created, api_keys.c.sid)
    if account_sid is not None:
        q = q.where(api_keys.c.account_sid == account_sid)
    q = q.offset(offset) if offset else q
    q = q.limit(limit) if limit is not None else q
    return [dict(r) for r in conn.execute(q).mappings()]


def rename_api_key(conn: Connection, key_sid: str, friendly_name: str, *, now: datetime) -> None:
    conn.execute(
        api_keys.update().where(api_keys.c.sid == key_sid).values(friendly_name=friendly_name, date_updated=now)
    )


def delete_api_key(conn: Connection, key_sid: str) -> bool:
    """Remove a key: its credentials stop working at once. False if there was none."""
    return bool(conn.execute(api_keys.delete().where(api_keys.c.sid == key_sid)).rowcount)


def get_api_key(conn: Connection, key_sid: str) -> Row | None:
    """An API key's record (its secret only as the stored hash)."""
    row = conn.execute(sa.select(api_keys).where(api_keys.c.sid == key_sid)).mappings().first()
    return dict(row) if row else None
