"""Carrier bind leases in the store (pigeon.store.binds), on SQLite and PostgreSQL: one slot is
never held by two processes, only its holder renews or releases it, and a lease that ran
out is taken over."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from pigeon.store import binds
from pigeon.store.binds import BindState
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock

LEASE = timedelta(seconds=30)


def acquire(db: Database, holder: str, now: datetime, *, carrier: str = "acme", slots: int = 1) -> int | None:
    with db.write() as conn:
        return binds.acquire(conn, carrier=carrier, slots=slots, holder=holder, now=now, until=now + LEASE)


def renew(db: Database, holder: str, slot: int, now: datetime, *, state: BindState = "bound", slots: int = 1) -> bool:
    with db.write() as conn:
        return binds.renew(
            conn, carrier="acme", slot=slot, slots=slots, holder=holder, now=now, until=now + LEASE, state=state
        )


def slots(db: Database) -> list[tuple[str, int, str | None, str | None]]:
    with db.read() as conn:
        return [(r["carrier"], r["slot"], r["holder"], r["state"]) for r in binds.list_slots(conn)]


def test_one_slot_goes_to_the_first_holder_and_stays_with_it(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    assert acquire(db, "host-a:1", now) == 1
    assert acquire(db, "host-b:2", now) is None
    assert acquire(db, "host-a:1", now) == 1  # asking again keeps the same slot
    assert slots(db) == [("acme", 1, "host-a:1", "binding")]


def test_two_holders_racing_for_the_last_slot_cannot_both_win(db: Database, clock: FrozenClock) -> None:
    """The second taker's guarded UPDATE waits for the first transaction (PostgreSQL: its row
    lock; SQLite: the write lock) and then finds the slot taken."""
    now = clock.now()
    assert acquire(db, "warm-up", now) == 1  # the slot's row exists and is free again
    with db.write() as conn:
        assert binds.release(conn, carrier="acme", slot=1, holder="warm-up")

    second: list[int | None] = []
    with db.write() as conn:
        assert binds.acquire(conn, carrier="acme", slots=1, holder="first", now=now, until=now + LEASE) == 1
        racer = threading.Thread(target=lambda: second.append(acquire(db, "second", now)))
        racer.start()
        time.sleep(0.3)
        assert racer.is_alive(), "the second taker did not wait for the first transaction"
    racer.join(10)
    assert second == [None]
    assert slots(db) == [("acme", 1, "first", "binding")]


def test_many_threads_racing_for_binds_1_leave_exactly_one_holder(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    for round_ in range(5):
        carrier = f"race{round_}"
        start = threading.Barrier(4)
        won: list[tuple[str, int | None]] = []

        def take(holder: str, carrier: str = carrier, start: threading.Barrier = start, won: list[Any] = won) -> None:
            start.wait(5)
            won.append((holder, acquire(db, holder, now, carrier=carrier)))

        threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        winners = [holder for holder, slot in won if slot is not None]
        assert len(won) == 4 and len(winners) == 1, won
        with db.read() as conn:
            rows = [r for r in binds.list_slots(conn) if r["carrier"] == carrier]
        assert [(r["slot"], r["holder"]) for r in rows] == [(1, winners[0])]


def test_binds_2_gives_two_holders_a_slot_each_and_the_third_none(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    assert acquire(db, "a", now, slots=2) == 1
    assert acquire(db, "b", now, slots=2) == 2
    assert acquire(db, "c", now, slots=2) is None
    assert [s[2] for s in slots(db)] == ["a", "b"]


def test_only_the_holder_renews(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    assert acquire(db, "a", now) == 1
    assert renew(db, "b", 1, now) is False
    assert slots(db) == [("acme", 1, "a", "binding")]
    assert renew(db, "a", 1, now, state="bound") is True
    assert slots(db) == [("acme", 1, "a", "bound")]


def test_an_expired_lease_is_taken_over_and_the_old_holder_can_no_longer_renew(
    db: Database, clock: FrozenClock
) -> None:
    assert acquire(db, "a", clock.now()) == 1
    assert renew(db, "a", 1, clock.now(), state="bound")
    clock.advance(29)
    assert acquire(db, "b", clock.now()) is None  # not yet: a's lease lasts 30 s
    clock.advance(2)
    assert acquire(db, "b", clock.now()) == 1
    with db.read() as conn:
        [row] = binds.list_slots(conn)
    assert (row["holder"], row["state"], row["acquired_at"]) == ("b", "binding", clock.now())
    assert row["expires_at"] == clock.now() + LEASE
    assert renew(db, "a", 1, clock.now()) is False  # a was too slow: it must unbind


def test_release_frees_the_slot_at_once_and_only_for_its_holder(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    assert acquire(db, "a", now) == 1
    with db.write() as conn:
        assert binds.release(conn, carrier="acme", slot=1, holder="b") is False
        assert binds.release(conn, carrier="acme", slot=1, holder="a") is True
    assert slots(db) == [("acme", 1, None, None)]
    assert acquire(db, "b", now) == 1


def test_fewer_binds_configured_stops_the_renewal_of_a_slot_beyond_them(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    assert acquire(db, "a", now, slots=2) == 1
    assert acquire(db, "b", now, slots=2) == 2
    assert renew(db, "b", 2, now, slots=1) is False
    assert acquire(db, "c", clock.advance(31), slots=1) == 1  # a's lease ran out; slot 2 is not offered


def test_live_binds_are_bound_or_binding_with_a_current_lease_or_one_just_run_out(
    db: Database, clock: FrozenClock
) -> None:
    now = clock.now()
    assert acquire(db, "a", now) == 1
    assert acquire(db, "b", now, carrier="backup") == 1
    assert acquire(db, "c", now, carrier="third") == 1
    with db.write() as conn:
        binds.renew(conn, carrier="acme", slot=1, slots=1, holder="a", now=now, until=now + LEASE, state="bound")
        # c's first bind failed: no traffic waits for it.
        binds.renew(conn, carrier="third", slot=1, slots=1, holder="c", now=now, until=now + LEASE, state="unbound")
    with db.read() as conn:
        assert binds.live_binds(conn, now=now) == {"acme": ["a"], "backup": ["b"]}  # b is binding
        # A lease that ran out counts for a third of its length more: the takeover's time.
        assert binds.live_binds(conn, now=now + LEASE + timedelta(seconds=9)) == {"acme": ["a"], "backup": ["b"]}
        assert binds.live_binds(conn, now=now + LEASE + timedelta(seconds=10)) == {}


def test_free_at_is_when_the_first_allowed_slot_runs_out(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.read() as conn:
        assert binds.free_at(conn, carrier="acme", slots=2) is None
    assert acquire(db, "a", now, slots=2) == 1
    assert acquire(db, "b", clock.advance(5), slots=2) == 2
    with db.read() as conn:
        assert binds.free_at(conn, carrier="acme", slots=2) == now + LEASE
