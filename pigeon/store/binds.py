"""Carrier bind leases (table carrier_binds): which process may bind to which carrier.

A carrier allows ``slots`` binds at once (its ``binds`` setting). Each slot is a row; the
process named in ``holder`` may keep one bind to the carrier until ``expires_at`` and must
renew before then, saying how its bind is (``state``: binding, bound, unbound). Every change
is a guarded UPDATE (STYLE absorb 8): a slot is taken only while it is free or its lease has
run out, renewed or released only by its holder. Two processes racing for one slot cannot
both win: on PostgreSQL the second UPDATE waits for the first's row lock and then re-reads
the row, whose guard no longer holds; on SQLite the write transactions run one at a time.

Times come from the processes' clocks, like the dispatcher's claim leases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import carrier_binds

Row = dict[str, Any]
BindState = Literal["binding", "bound", "unbound"]
b = carrier_binds.c

#: States in which a holder has the carrier bound, or is binding it right now.
UP: tuple[BindState, ...] = ("binding", "bound")

# -- named statements ------------------------------------------------------------------------

_SLOTS_OF = sa.select(b.slot).where(b.carrier == sa.bindparam("b_carrier"))

_HELD_BY = (
    sa.select(b.slot)
    .where(b.carrier == sa.bindparam("b_carrier"), b.holder == sa.bindparam("b_holder"))
    .order_by(b.slot)
)

_TAKEABLE = (
    sa.select(b.slot)
    .where(
        b.carrier == sa.bindparam("b_carrier"),
        b.slot <= sa.bindparam("b_slots"),
        sa.or_(b.holder.is_(None), b.expires_at < sa.bindparam("b_now")),
    )
    .order_by(b.slot)
)

# The guard is the whole point: free, or its lease ran out — re-checked on the row itself.
_TAKE = (
    carrier_binds.update()
    .where(
        b.carrier == sa.bindparam("b_carrier"),
        b.slot == sa.bindparam("b_slot"),
        sa.or_(b.holder.is_(None), b.expires_at < sa.bindparam("b_now")),
    )
    .values(
        holder=sa.bindparam("b_holder"),
        acquired_at=sa.bindparam("b_now"),
        renewed_at=sa.bindparam("b_now"),
        expires_at=sa.bindparam("b_until"),
        state="binding",
    )
)

# Only the holder renews, and only a slot the carrier still allows (its `binds` may have shrunk).
_RENEW = (
    carrier_binds.update()
    .where(
        b.carrier == sa.bindparam("b_carrier"),
        b.slot == sa.bindparam("b_slot"),
        b.slot <= sa.bindparam("b_slots"),
        b.holder == sa.bindparam("b_holder"),
    )
    .values(renewed_at=sa.bindparam("b_now"), expires_at=sa.bindparam("b_until"), state=sa.bindparam("b_state"))
)

_RELEASE = (
    carrier_binds.update()
    .where(
        b.carrier == sa.bindparam("b_carrier"),
        b.slot == sa.bindparam("b_slot"),
        b.holder == sa.bindparam("b_holder"),
    )
    .values(holder=None, acquired_at=None, renewed_at=None, expires_at=None, state=None)
)

_FREE_AT = sa.select(sa.func.min(b.expires_at)).where(
    b.carrier == sa.bindparam("b_carrier"), b.slot <= sa.bindparam("b_slots")
)

# A few rows per carrier: the grace after expiry is worked out in Python, alike on both stores.
_UP = sa.select(b.carrier, b.holder, b.renewed_at, b.expires_at).where(b.holder.is_not(None), b.state.in_(UP))

_LIST = sa.select(carrier_binds).order_by(b.carrier, b.slot)


def acquire(conn: Connection, *, carrier: str, slots: int, holder: str, now: datetime, until: datetime) -> int | None:
    """The slot `holder` holds of `carrier` after this call, leased until `until` and marked
    binding: the one it had already, else a free or expired one; None when every allowed
    slot is someone else's."""
    for slot in conn.execute(_HELD_BY, {"b_carrier": carrier, "b_holder": holder}).scalars():
        if renew(conn, carrier=carrier, slot=slot, slots=slots, holder=holder, now=now, until=until, state="binding"):
            return int(slot)
    _ensure_slots(conn, carrier, slots)
    params = {"b_carrier": carrier, "b_slots": slots, "b_now": now}
    for slot in conn.execute(_TAKEABLE, params).scalars().all():
        taken = conn.execute(_TAKE, {**params, "b_slot": slot, "b_holder": holder, "b_until": until})
        if taken.rowcount == 1:
            return int(slot)
    return None


def renew(
    conn: Connection,
    *,
    carrier: str,
    slot: int,
    slots: int,
    holder: str,
    now: datetime,
    until: datetime,
    state: BindState,
) -> bool:
    """Extend `holder`'s lease on `slot` to `until` and record how its bind is. False when the
    slot is no longer `holder`'s (its lease ran out and another process took it) or the
    carrier no longer allows that many binds."""
    result = conn.execute(
        _RENEW,
        {
            "b_carrier": carrier,
            "b_slot": slot,
            "b_slots": slots,
            "b_holder": holder,
            "b_now": now,
            "b_until": until,
            "b_state": state,
        },
    )
    return bool(result.rowcount == 1)


def release(conn: Connection, *, carrier: str, slot: int, holder: str) -> bool:
    """Free `holder`'s slot at once (a clean shutdown); False when it was no longer its."""
    result = conn.execute(_RELEASE, {"b_carrier": carrier, "b_slot": slot, "b_holder": holder})
    return bool(result.rowcount == 1)


def free_at(conn: Connection, *, carrier: str, slots: int) -> datetime | None:
    """When the first of `carrier`'s allowed slots comes free unless renewed (None: one is free)."""
    found = conn.execute(_FREE_AT, {"b_carrier": carrier, "b_slots": slots}).scalar_one_or_none()
    return found if isinstance(found, datetime) else None


def live_binds(conn: Connection, *, now: datetime) -> dict[str, list[str]]:
    """Carrier -> the processes that have it bound or are binding it, in a stable order.

    A lease counts while it is current and for a third of its length after it ran out
    unrenewed: the holder may have died, and that is when another process takes the slot
    over (it tries every third of the lease); until it has, the carrier is not "bound
    nowhere", so traffic waits for the takeover instead of failing over."""
    found: dict[str, set[str]] = {}
    for carrier, holder, renewed_at, expires_at in conn.execute(_UP):
        if expires_at is None or renewed_at is None:
            continue
        grace = (expires_at - renewed_at) / 3
        if now < expires_at + grace:
            found.setdefault(carrier, set()).add(holder)
    return {carrier: sorted(holders) for carrier, holders in found.items()}


def list_slots(conn: Connection) -> list[Row]:
    """Every slot of every carrier, free ones included, by carrier and slot."""
    return [dict(r) for r in conn.execute(_LIST).mappings()]


def _ensure_slots(conn: Connection, carrier: str, slots: int) -> None:
    """Create the rows of slots 1..`slots` that do not exist yet (a new carrier, or more binds)."""
    missing = set(range(1, slots + 1)) - set(conn.execute(_SLOTS_OF, {"b_carrier": carrier}).scalars())
    if not missing:
        return
    rows = [{"carrier": carrier, "slot": slot} for slot in sorted(missing)]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(carrier_binds).values(rows).on_conflict_do_nothing(index_elements=["carrier", "slot"]))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(
            sqlite_insert(carrier_binds).values(rows).on_conflict_do_nothing(index_elements=["carrier", "slot"])
        )
