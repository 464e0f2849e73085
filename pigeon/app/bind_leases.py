"""Holding one of a carrier's bind leases: the store side of `pigeon.workers.bind_leases`.

`keep` is one step for one carrier, in one transaction: renew the slot this process holds
(recording how its bind is), or take a free or expired slot when it holds none. `let_go`
frees the slot at a clean shutdown, so another process binds without waiting for the lease
to run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pigeon.store import binds
from pigeon.store.binds import BindState
from pigeon.store.engine import Database

__all__ = ["BindState", "Kept", "Lease", "keep", "let_go"]


@dataclass(frozen=True)
class Lease:
    slot: int
    expires_at: datetime


@dataclass(frozen=True)
class Kept:
    """The lease held after a step; without one, when the first slot comes free unless its
    holder renews it (None: unknown, or free now)."""

    lease: Lease | None
    free_at: datetime | None = None


def keep(
    db: Database,
    *,
    carrier: str,
    slots: int,
    holder: str,
    held: int | None,
    state: BindState,
    now: datetime,
    duration: timedelta,
) -> Kept:
    """Renew `held` (no lease back: it was lost, as its lease ran out and another process
    took it; unbind at once), or, holding none, take a slot (no lease back: every allowed
    slot is someone else's; stand by)."""
    until = now + duration
    with db.write() as conn:
        if held is not None:
            renewed = binds.renew(
                conn, carrier=carrier, slot=held, slots=slots, holder=holder, now=now, until=until, state=state
            )
            return Kept(Lease(held, until) if renewed else None)
        slot = binds.acquire(conn, carrier=carrier, slots=slots, holder=holder, now=now, until=until)
        if slot is not None:
            return Kept(Lease(slot, until))
        return Kept(None, binds.free_at(conn, carrier=carrier, slots=slots))


def let_go(db: Database, *, carrier: str, slot: int, holder: str) -> bool:
    with db.write() as conn:
        return binds.release(conn, carrier=carrier, slot=slot, holder=holder)
