"""Event Streams sinks (event_sinks, DG…) and subscriptions (event_subscriptions, DF…).

A subscription's ``types`` column holds its subscribed event types as JSON,
``[{"type": "com.twilio.messaging.message.delivered", "schema_version": 1}, …]``; `routes`
reads every subscription of an account with its sink in one indexed query, which is what
publishing an event costs on every status change.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import Prefix, new_sid
from pigeon.store.prepared import Prepared
from pigeon.store.tables import event_sinks, event_subscriptions, webhook_deliveries

Row = dict[str, Any]

k = event_sinks.c
s = event_subscriptions.c

#: webhook_deliveries.kind of an Event Streams delivery.
EVENT = "event"

# -- named queries ----------------------------------------------------------------------------

_ROUTES = (
    sa.select(s.sink_sid, s.types, k.sink_configuration, k.status.label("sink_status"))
    .join(event_sinks, k.sid == s.sink_sid)
    .where(s.account_sid == sa.bindparam("account_sid"))
    .order_by(s.date_created, s.sid)
)

_ROUTES_OF = Prepared(
    sa.select(s.account_sid, s.sink_sid, s.types, k.sink_configuration, k.status.label("sink_status"))
    .join(event_sinks, k.sid == s.sink_sid)
    .where(s.account_sid.in_(sa.bindparam("b_accounts", expanding=True)))
    .order_by(s.date_created, s.sid)
)

_IN_USE = sa.exists().where(s.sink_sid == k.sid)

# -- sinks ------------------------------------------------------------------------------------


def create_sink(
    conn: Connection,
    *,
    account_sid: str,
    description: str,
    sink_type: str,
    configuration: dict[str, Any],
    status: str,
    now: datetime,
) -> Row:
    sid = new_sid(Prefix.SINK)
    conn.execute(
        event_sinks.insert().values(
            sid=sid,
            account_sid=account_sid,
            description=description,
            sink_type=sink_type,
            sink_configuration=configuration,
            status=status,
            date_created=now,
            date_updated=now,
        )
    )
    row = get_sink(conn, sid)
    assert row is not None
    return row


def get_sink(conn: Connection, sid: str, *, account_sid: str | None = None, lock: bool = False) -> Row | None:
    """The sink; with `lock`, held until the transaction ends (PostgreSQL: FOR UPDATE), so that a
    subscription being made on it and its deletion take turns (`pigeon.app.event_streams`)."""
    q = sa.select(event_sinks).where(k.sid == sid)
    if account_sid is not None:
        q = q.where(k.account_sid == account_sid)
    if lock:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def list_sinks(
    conn: Connection,
    account_sid: str,
    *,
    in_use: bool | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Row]:
    """An account's sinks, oldest first; `in_use` keeps those a subscription uses (or not)."""
    q = sa.select(event_sinks).where(k.account_sid == account_sid).order_by(k.date_created, k.sid).offset(offset)
    if in_use is not None:
        q = q.where(_IN_USE if in_use else ~_IN_USE)
    if status is not None:
        q = q.where(k.status == status)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def update_sink(conn: Connection, sid: str, *, now: datetime, **values: Any) -> None:
    conn.execute(event_sinks.update().where(k.sid == sid).values(date_updated=now, **values))


def delete_sink(conn: Connection, sid: str) -> None:
    conn.execute(event_sinks.delete().where(k.sid == sid))


def sink_in_use(conn: Connection, sid: str) -> bool:
    q = sa.select(sa.func.count()).select_from(event_subscriptions).where(s.sink_sid == sid)
    return int(conn.execute(q).scalar_one()) > 0


def recent_test_events(conn: Connection, *, account_sid: str, url: str, limit: int = 20) -> list[Row]:
    """The latest Event Streams deliveries to `url` that belong to no message (the test events
    of a sink live there), newest first: their params say which sink and which test."""
    d = webhook_deliveries.c
    q = (
        sa.select(d.id, d.params, d.date_created)
        .where(d.account_sid == account_sid, d.kind == EVENT, d.message_sid.is_(None), d.url == url)
        .order_by(d.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


# -- subscriptions ----------------------------------------------------------------------------


def create_subscription(
    conn: Connection,
    *,
    account_sid: str,
    sink_sid: str,
    description: str,
    types: Sequence[dict[str, Any]],
    now: datetime,
) -> Row:
    sid = new_sid(Prefix.SUBSCRIPTION)
    conn.execute(
        event_subscriptions.insert().values(
            sid=sid,
            account_sid=account_sid,
            sink_sid=sink_sid,
            description=description,
            types=list(types),
            date_created=now,
            date_updated=now,
        )
    )
    row = get_subscription(conn, sid)
    assert row is not None
    return row


def get_subscription(
    conn: Connection, sid: str, *, account_sid: str | None = None, for_update: bool = False
) -> Row | None:
    """A subscription; `for_update` locks it on PostgreSQL for a read-modify-write of its types."""
    q = sa.select(event_subscriptions).where(s.sid == sid)
    if account_sid is not None:
        q = q.where(s.account_sid == account_sid)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def list_subscriptions(
    conn: Connection, account_sid: str, *, sink_sid: str | None = None, offset: int = 0, limit: int | None = None
) -> list[Row]:
    q = (
        sa.select(event_subscriptions)
        .where(s.account_sid == account_sid)
        .order_by(s.date_created, s.sid)
        .offset(offset)
    )
    if sink_sid is not None:
        q = q.where(s.sink_sid == sink_sid)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def update_subscription(conn: Connection, sid: str, *, now: datetime, **values: Any) -> None:
    conn.execute(event_subscriptions.update().where(s.sid == sid).values(date_updated=now, **values))


def delete_subscription(conn: Connection, sid: str) -> None:
    conn.execute(event_subscriptions.delete().where(s.sid == sid))


def routes(conn: Connection, account_sid: str) -> list[Row]:
    """Every subscription of the account with its sink: sink_sid, types, sink_configuration,
    sink_status. Empty (one index probe) for an account that streams nothing."""
    return [dict(r) for r in conn.execute(_ROUTES, {"account_sid": account_sid}).mappings()]


def routes_of(conn: Connection, account_sids: Collection[str]) -> dict[str, list[Row]]:
    """`routes` of several accounts in one query (a batch of new messages): only the accounts
    with a subscription are keys. For accounts that stream nothing, one probe of the
    (account_sid) index each, on the statement compiled once (`pigeon.store.prepared`)."""
    found: dict[str, list[Row]] = {}
    for row in _ROUTES_OF.all(conn, {"b_accounts": list(account_sids)}):
        found.setdefault(row.pop("account_sid"), []).append(row)
    return found
