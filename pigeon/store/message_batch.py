"""Set-based writes to messages and their timeline, for the workers that move many at once.

`store.messages.transition` moves one message: a guarded UPDATE and a timeline row, one round
trip each. The dispatcher and the receipt worker move hundreds of messages per transaction,
so they use these instead: `transition_many` is the same guard (``WHERE status IN allowed``)
for many messages in one statement, and only the rows it returns have moved; `add_events`
writes many timeline rows in one executemany. The caller writes the timeline rows of the
messages that moved, in the same transaction, exactly as `transition` does for one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import MessageStatus, allowed_from
from pigeon.store.engine import unindexed
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import message_events, messages

Row = dict[str, Any]
m = messages.c


def transition_many(
    conn: Connection,
    sids: Sequence[str],
    to: MessageStatus,
    *,
    at: datetime,
    error_code: int | None = None,
    error_message: str | None = None,
    from_statuses: Iterable[MessageStatus] | None = None,
    **values: Any,
) -> dict[str, Row]:
    """Move every message of `sids` whose status allows it to `to`; returns the moved rows
    (as updated) by SID. `values` are plain column values (``attempts=2``), bound as parameters
    of a statement built once per shape: not column expressions."""
    if not sids:
        return {}
    allowed = tuple(sorted(str(s) for s in (from_statuses if from_statuses is not None else allowed_from(to))))
    changes: dict[str, Any] = {"status": str(to), "date_updated": at, **values}
    if error_code is not None:
        changes["error_code"] = error_code
        changes["error_message"] = error_message
    q = _transition(allowed, tuple(sorted(changes)))
    params = {f"v_{name}": value for name, value in changes.items()}
    return {r["sid"]: r for r in q.all(conn, {**params, "sids": sorted(set(sids))})}


@functools.cache
def _transition(allowed: tuple[str, ...], columns: tuple[str, ...]) -> Prepared:
    """`transition_many`'s UPDATE for one set of allowed statuses and changed columns, built
    and compiled once (`store.prepared`): the workers run a handful of these shapes with every
    batch, inside SQLite's writer lock."""
    return Prepared(
        messages.update()
        # Found by SID; the status only guards (`unindexed`: else SQLite reads every message in
        # those statuses).
        .where(
            m.sid.in_(sa.bindparam("sids", expanding=True)), unindexed(m.status).in_(sa.bindparam("allowed", allowed))
        )
        .values({name: sa.bindparam(f"v_{name}", type_=m[name].type) for name in columns})
        .returning(*messages.c)
    )


_BY_SIDS = Prepared(sa.select(messages).where(m.sid.in_(sa.bindparam("sids", expanding=True))))
_EXISTING = Prepared(sa.select(m.sid).where(m.sid.in_(sa.bindparam("sids", expanding=True))))


def get_messages(conn: Connection, sids: Iterable[str]) -> dict[str, Row]:
    """The messages of `sids` that exist, by SID."""
    wanted = sorted(set(sids))
    if not wanted:
        return {}
    return {r["sid"]: r for r in _BY_SIDS.all(conn, {"sids": wanted})}


def existing(conn: Connection, sids: Iterable[str]) -> set[str]:
    """Which of `sids` still exist (a deleted message keeps no timeline)."""
    wanted = sorted(set(sids))
    if not wanted:
        return set()
    return {r["sid"] for r in _EXISTING.all(conn, {"sids": wanted})}


def event(
    *,
    message_sid: str,
    account_sid: str,
    at: datetime,
    kind: str,
    status: str | None = None,
    error_code: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Row:
    """One timeline row, shaped as `store.messages.add_event` writes it."""
    return {
        "message_sid": message_sid,
        "account_sid": account_sid,
        "at": at,
        "kind": kind,
        "status": status,
        "error_code": error_code,
        "detail": dict(detail) if detail else None,
    }


def add_events(conn: Connection, rows: Sequence[Row]) -> None:
    """Append timeline rows (made with `event`), in order, with one multi-row INSERT
    (`store.prepared.insert_many`)."""
    insert_many(conn, message_events, rows)


def set_prices(conn: Connection, sids: Iterable[str], *, price: str) -> None:
    """Write `price` on the messages of `sids` that have one (a message never priced keeps
    its null)."""
    wanted = sorted(set(sids))
    if wanted:
        conn.execute(messages.update().where(m.sid.in_(wanted), m.price.is_not(None)).values(price=price))
