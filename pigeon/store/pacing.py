"""Senders' pacing rows (``sender_pacing``): each sender's next free slot, which claims reserve.

A transaction that reserves slots holds the rows of its senders until it commits (PostgreSQL:
FOR UPDATE, taken in sender order, so that two claims never wait for each other crosswise):
no two dispatchers give out the same slot. On SQLite, one writer at a time, it reads them.

How long a claim waits for a row. Every claim holds its rows for milliseconds; one that holds
a row for long is most likely stuck: a worker cut off from the server inside its claim (a
network partition without a reset, a process stopped, a VM paused) keeps its locks until the
server ends its session. Every other claim that met that sender waited behind it, and held
the messages it had claimed meanwhile, so the next claims met those and waited too: sending
stopped everywhere. So `lock_slots` waits for a row `wait` at most (a transaction-local
``lock_timeout``, in a savepoint); past that the senders it could not have are ``busy``, it
takes the rows that are free (SKIP LOCKED), and the caller leaves the busy senders' messages
for later. For senders already found busy (``no_wait``) it does not wait at all.

A new sender's row is made in a transaction of its own, committed at once, not in the
caller's: an uncommitted row would make every other claim that inserts it wait for that
claim (a unique index waits for the transaction that inserted the key), and could not be told
from a row that does not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.engine import lookup
from pigeon.store.prepared import Prepared, Row
from pigeon.store.tables import sender_pacing

_SENDERS = sender_pacing.c.sender.in_(sa.bindparam("b_senders", expanding=True))
_PACING_OF = Prepared(sa.select(sender_pacing).where(_SENDERS))
# In sender order: see the module doc.
_LOCK = Prepared(sa.select(sender_pacing).where(_SENDERS).order_by(sender_pacing.c.sender).with_for_update())
_LOCK_FREE = Prepared(sa.select(sender_pacing).where(_SENDERS).with_for_update(skip_locked=True))
_SET_NEXT_FREE = (
    sender_pacing.update()
    .where(sender_pacing.c.sender == sa.bindparam("b_sender"))
    .values(next_send_at=sa.bindparam("b_at"))
)
# set_config(…, true) is SET LOCAL: the value holds until the (sub)transaction ends.
_WAIT_AT_MOST = "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %(ms)s, true)"
_WAIT_AS_BEFORE = "SELECT set_config('lock_timeout', %(before)s, true)"
#: PostgreSQL's SQLSTATE for a lock not had within lock_timeout (or with NOWAIT).
_LOCK_NOT_AVAILABLE = "55P03"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Slots(NamedTuple):
    free: dict[str, datetime]  # sender -> its next free slot, for the rows this transaction holds
    busy: frozenset[str]  # senders whose row another transaction holds (PostgreSQL)
    waited: frozenset[str]  # of `busy`, those waited for in vain this time


def next_free(conn: Connection, senders: Iterable[str]) -> dict[str, datetime]:
    """Each sender's next free slot, by its pacing key (`domain.pacing.queue_key`: a number, or
    "<account SID>:<alphanumeric sender>"), as committed; a sender that never sent has none.
    Locks nothing."""
    wanted = sorted(set(senders))
    if not wanted:
        return {}
    return _slots(_PACING_OF.all(conn, {"b_senders": wanted}))


def lock_slots(conn: Connection, senders: Iterable[str], *, wait: timedelta, no_wait: Collection[str] = ()) -> Slots:
    """The next free slot of each of these senders whose row this transaction can hold, and
    hold it (PostgreSQL) until the transaction ends: waiting `wait` at most for a row another
    transaction holds, and not at all for those in `no_wait` (module doc). On SQLite every
    sender's, as committed (a sender that never sent has no row, and none is busy)."""
    wanted = sorted(set(senders))
    if not wanted or conn.dialect.name != "postgresql":
        return Slots(next_free(conn, wanted), frozenset(), frozenset())
    patient = [s for s in wanted if s not in no_wait]
    held = _lock_waiting(conn, patient, wait) if patient else {}
    free = held if held is not None else {}
    rest = [s for s in wanted if s not in free]
    if rest:
        free |= _lock_free(conn, rest)
    busy = frozenset(wanted) - free.keys()
    return Slots(free, busy, frozenset(patient) & busy if held is None else frozenset())


class _NewSenders(Exception):
    def __init__(self, senders: list[str]) -> None:
        super().__init__(senders)
        self.senders = senders


def _lock_waiting(conn: Connection, senders: Sequence[str], wait: timedelta) -> dict[str, datetime] | None:
    """Hold every one of these senders' rows, waiting `wait` at most for each; None when one
    stayed held by another transaction that long (this took none of them then). A sender
    without a row gets one, and then all are taken again, in order."""
    ms = str(max(1, round(wait.total_seconds() * 1000)))  # 0 would mean no limit
    for attempt in (1, 2):
        try:
            with conn.begin_nested():
                before = conn.exec_driver_sql(_WAIT_AT_MOST, {"ms": ms}).scalar_one()
                held = _slots(_LOCK.all(conn, {"b_senders": list(senders)}))
                new = [s for s in senders if s not in held]
                if new and attempt == 1:
                    raise _NewSenders(new)  # let go of the others, to take all in order
                conn.exec_driver_sql(_WAIT_AS_BEFORE, {"before": before})
                return held
        except _NewSenders as fresh:
            _make_rows(conn, fresh.senders)
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            return None
    raise AssertionError("unreachable: the second attempt returns")


def _lock_free(conn: Connection, senders: Sequence[str]) -> dict[str, datetime]:
    """Hold those of these senders' rows that no other transaction holds, without waiting."""
    held = _slots(_LOCK_FREE.all(conn, {"b_senders": list(senders)}))
    unseen = [s for s in senders if s not in held]
    if unseen:
        there = next_free(conn, unseen)  # rows another transaction holds; the others are new
        new = [s for s in unseen if s not in there]
        if new:
            _make_rows(conn, new)
            held |= _slots(_LOCK_FREE.all(conn, {"b_senders": new}))
    return held


def _make_rows(conn: Connection, senders: Sequence[str]) -> None:
    """Rows for senders that never sent, free at once, committed at once (module doc)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    with lookup(conn.engine) as own:  # autocommit: a transaction of its own
        own.execute(
            pg_insert(sender_pacing)
            .values([{"sender": s, "next_send_at": _EPOCH} for s in senders])
            .on_conflict_do_nothing(index_elements=["sender"])
        )


def _slots(rows: Iterable[Row]) -> dict[str, datetime]:
    return {r["sender"]: r["next_send_at"] for r in rows}


def set_next_free(conn: Connection, values: dict[str, datetime], *, known: set[str]) -> None:
    """Move senders' next free slots: those in `known` have a row (held by this transaction on
    PostgreSQL), the others get one."""
    updates = [{"b_sender": sender, "b_at": at} for sender, at in sorted(values.items()) if sender in known]
    if updates:
        conn.execute(_SET_NEXT_FREE, updates)
    for sender, at in values.items():
        if sender in known:
            continue
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(sender_pacing).values(sender=sender, next_send_at=at)
            conn.execute(stmt.on_conflict_do_update(index_elements=["sender"], set_={"next_send_at": at}))
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt2 = sqlite_insert(sender_pacing).values(sender=sender, next_send_at=at)
            conn.execute(stmt2.on_conflict_do_update(index_elements=["sender"], set_={"next_send_at": at}))
