"""Holding one of a carrier's bind leases: the store side of `pigeon.workers.bind_leases`.

`keep` is one step for one carrier, in one transaction: renew the slot this process holds
(recording whether its bind is up), or take a free or expired slot when it holds none.
`let_go` frees the slot at a clean shutdown, so another process binds without waiting for
the lease to run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pigeon.store import binds
from pigeon.store.engine import Database


@dataclass(frozen=True)
class Lease:
    slot: int
    expires_at: datetime


def keep(
    db: Database,
    *,
    carrier: str,
    slots: int,
    holder: str,
    held: int | None,
    bound: bool,
    now: datetime,
    duration: timedelta,
) -> Lease | None:
    """The lease `holder` has on `carrier` after this step. With `held`, None means the slot
    was lost (its lease ran out and another process took it): unbind at once. Without, None
    means every allowed slot is someone else's: stand by."""
    until = now + duration
    with db.write() as conn:
        if held is not None:
            renewed = binds.renew(
                conn, carrier=carrier, slot=held, slots=slots, holder=holder, now=now, until=until, bound=bound
            )
            return Lease(held, until) if renewed else None
        slot = binds.acquire(conn, carrier=carrier, slots=slots, holder=holder, now=now, until=until)
    return Lease(slot, until) if slot is not None else None


def let_go(db: Database, *, carrier: str, slot: int, holder: str) -> bool:
    with db.write() as conn:
        return binds.release(conn, carrier=carrier, slot=slot, holder=holder)
