"""The bind lease keeper (pigeon.workers.bind_leases) on both stores, with carriers that bind on
command and a frozen clock: a carrier binds only while its process holds a slot, a lost slot
unbinds at once, a lease that cannot be renewed unbinds at once before it runs out, and a clean
shutdown keeps renewing its slot until the carrier is unbound, and frees it after."""

from __future__ import annotations

import asyncio
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from pigeon.store import binds
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from pigeon.workers.bind_leases import BindLeaseKeeper

LEASE = 30.0


class Carrier:
    """Binds on command (or fails to); records what it was told and what the store said then."""

    def __init__(
        self, db: Database, name: str = "acme", *, binds_ok: bool = True, slots: int = 1, lease: float = LEASE
    ) -> None:
        self.db = db
        self.name = name
        self.slots = slots
        self.lease_seconds = lease
        self.slot: int | None = None
        self.expires_at: datetime | None = None
        self.binds_ok = binds_ok
        self.running = self.bound = False
        self.calls: list[tuple[str, Any]] = []
        #: Given, a graceful unbind lasts until it is set: the submits in flight finishing.
        self.in_flight: asyncio.Event | None = None

    async def bind(self) -> None:
        if self.running:  # as LeasedCarrier: a running carrier reconnects by itself
            return
        self.running, self.bound = True, self.binds_ok
        self.calls.append(("bind", self.slot))

    async def unbind(self, *, at_once: bool = False) -> None:
        self.running = self.bound = False  # as LeasedCarrier: no submit from the moment it is called
        if self.in_flight is not None and not at_once:
            await self.in_flight.wait()
        self.calls.append(("unbind at once" if at_once else "unbind", await asyncio.to_thread(self.holder)))

    def is_bound(self) -> bool:
        return self.bound

    def holder(self) -> tuple[str | None, str | None]:
        with self.db.read() as conn:
            rows = [r for r in binds.list_slots(conn) if r["carrier"] == self.name]
        return (rows[0]["holder"], rows[0]["state"]) if rows else (None, None)


def keeper(db: Database, clock: FrozenClock, holder: str, *carriers: Carrier) -> BindLeaseKeeper:
    return BindLeaseKeeper(db, clock, list(carriers), holder=holder)


def test_of_two_processes_with_binds_1_only_the_first_binds(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a, b = Carrier(db), Carrier(db)
        first, second = keeper(db, clock, "host-a:1", a), keeper(db, clock, "host-b:2", b)
        await first.start()
        await second.start()
        assert (a.bound, a.slot, b.bound, b.slot) == (True, 1, False, None)
        assert a.holder() == ("host-a:1", "bound")  # reported as soon as the bind was up
        assert first.reach().bound_here == {"acme"} and second.reach().bound_here == frozenset()
        assert second.reach().leased == {"acme"}
        await second.step()
        assert b.calls == []

    asyncio.run(scenario())


def test_a_first_bind_that_fails_is_reported_unbound(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        down = Carrier(db, binds_ok=False)
        keeping = keeper(db, clock, "host-a:1", down)
        await keeping.start()
        assert down.holder() == ("host-a:1", "unbound") and down.slot == 1
        down.running = False  # its start failed: the next step starts it again
        await keeping.step()
        assert down.calls == [("bind", 1), ("bind", 1)]

    asyncio.run(scenario())


def test_a_slot_lost_to_a_takeover_unbinds_at_once(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a, b = Carrier(db), Carrier(db)
        slow, standby = keeper(db, clock, "host-a:1", a), keeper(db, clock, "host-b:2", b)
        await slow.start()
        await standby.start()
        clock.advance(LEASE + 1)  # host-a stalled past its lease
        await standby.step()
        assert b.bound and b.holder() == ("host-b:2", "bound")
        await slow.step()
        assert a.calls[-1] == ("unbind at once", ("host-b:2", "bound")) and not a.bound and a.slot is None
        assert slow.reach().bound_here == frozenset()

    asyncio.run(scenario())


class BrokenStore:
    def write(self) -> AbstractContextManager[Any]:
        raise ConnectionError("the store is down")


def test_a_lease_that_cannot_be_renewed_unbinds_before_it_runs_out_and_rebinds_later(
    db: Database, clock: FrozenClock
) -> None:
    async def scenario() -> None:
        a = Carrier(db)
        keeping = keeper(db, clock, "host-a:1", a)
        await keeping.start()
        keeping.db = BrokenStore()  # type: ignore[assignment]
        clock.advance(LEASE / 3)
        await keeping.step()
        assert a.bound  # 20 s of lease left: keep trying
        clock.advance(LEASE / 3)
        await keeping.step()
        assert not a.bound and a.slot is None  # 10 s left: unbind, before another process may bind
        # at once: submits in flight are not waited for (they are recorded as unanswered)
        assert a.calls[-1] == ("unbind at once", ("host-a:1", "bound"))  # the slot could not be released

        keeping.db = db  # the store is back, and the slot is still this process's
        await keeping.step()
        assert a.bound and a.slot == 1 and a.holder() == ("host-a:1", "bound")

    asyncio.run(scenario())


def test_a_clean_shutdown_unbinds_before_it_frees_the_slot(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a, b = Carrier(db), Carrier(db)
        leaving, standby = keeper(db, clock, "host-a:1", a), keeper(db, clock, "host-b:2", b)
        await leaving.start()
        await standby.start()
        await leaving.close()
        assert a.calls == [("bind", 1), ("unbind", ("host-a:1", "bound"))]  # still held while unbinding
        assert a.holder() == (None, None)
        await standby.step()  # no need to wait for a lease to run out
        assert b.bound and b.holder() == ("host-b:2", "bound")

    asyncio.run(scenario())


SHORT = 0.3  # seconds: a lease renewed every 0.1 s, for the tests that run the keeper's loop


async def renewed(a: Carrier, clock: FrozenClock) -> None:
    """Wait (5 s at most) until `a`'s slot has been renewed at the clock's present time."""
    deadline = asyncio.get_running_loop().time() + 5
    while (found := await asyncio.to_thread(lease_end, a)) != clock.now() + timedelta(seconds=SHORT):
        assert asyncio.get_running_loop().time() < deadline, f"the slot was not renewed: it runs out at {found}"
        await asyncio.sleep(0.01)


def lease_end(a: Carrier) -> datetime | None:
    with a.db.read() as conn:
        [row] = [r for r in binds.list_slots(conn) if r["carrier"] == a.name]
    return _aware(row["expires_at"])


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at  # SQLite keeps no zone


async def outlast_the_lease(a: Carrier, clock: FrozenClock) -> None:
    """Let twice the lease go by, a third of it at a time, each time after the slot was renewed."""
    for _ in range(6):
        await renewed(a, clock)
        clock.advance(SHORT / 3)
    await renewed(a, clock)


def test_a_shutdown_renews_the_slot_until_the_carrier_is_unbound_and_frees_it_after(
    db: Database, clock: FrozenClock
) -> None:
    """At SIGTERM the dispatcher finishes its submits first and the carrier unbinds after,
    waiting for its own submits in flight: together that may take longer than the lease. The
    slot is renewed all along, so no standby takes it and binds while this process still has
    the bind; it is freed once the carrier is unbound."""

    async def scenario() -> None:
        a, b = Carrier(db, lease=SHORT), Carrier(db, lease=SHORT)
        leaving = BindLeaseKeeper(db, clock, [a], holder="host-a:1", poll=0.02)
        standby = keeper(db, clock, "host-b:2", b)
        await leaving.start()
        await standby.start()
        stop = asyncio.Event()
        running = asyncio.create_task(leaving.run(stop))
        closing: asyncio.Task[None] | None = None
        try:
            stop.set()  # SIGTERM: the dispatcher drains
            await outlast_the_lease(a, clock)
            await standby.step()
            assert not b.bound and a.holder() == ("host-a:1", "bound")

            a.in_flight = asyncio.Event()
            closing = asyncio.create_task(leaving.close())  # the carrier unbinds, slowly
            await outlast_the_lease(a, clock)
            await standby.step()
            assert not b.bound and a.holder() == ("host-a:1", "unbound")  # it says it is leaving
            a.in_flight.set()
            await closing
        finally:
            stop.set()
            if a.in_flight is not None:
                a.in_flight.set()
            await (closing or leaving.close())
            await running
        assert a.calls == [("bind", 1), ("unbind", ("host-a:1", "unbound"))]  # unbound while still held
        assert a.holder() == (None, None)
        await standby.step()
        assert b.bound and b.holder() == ("host-b:2", "bound")

    asyncio.run(scenario())


def test_a_keeper_shutting_down_takes_no_slot_and_binds_nothing(db: Database, clock: FrozenClock) -> None:
    """From SIGTERM on, a standby stops looking for a slot, and a holder whose bind failed does
    not start it again: a bind made during the shutdown would only be closed again."""

    async def scenario() -> None:
        down, b = Carrier(db, binds_ok=False, lease=SHORT), Carrier(db, lease=SHORT)
        holding = BindLeaseKeeper(db, clock, [down], holder="host-a:1", poll=0.02)
        standby = BindLeaseKeeper(db, clock, [b], holder="host-b:2", poll=0.02)
        await holding.start()
        await standby.start()
        down.running = False  # its start failed: a step would start it again
        stop = asyncio.Event()
        stop.set()
        running = [asyncio.create_task(k.run(stop)) for k in (holding, standby)]
        await renewed(down, clock)
        await holding.close()  # frees the slot
        await asyncio.gather(*running)
        assert down.calls == [("bind", 1), ("unbind", ("host-a:1", "unbound"))]
        assert b.calls == [] and b.holder() == (None, None)

    asyncio.run(scenario())


def test_a_standby_takes_a_slot_freed_by_a_clean_shutdown_within_a_poll(db: Database, clock: FrozenClock) -> None:
    """A clean shutdown frees the slot at a moment no standby can know: standing by, a keeper
    looks every poll, not every third of the lease (10 s here)."""

    async def scenario() -> None:
        a, b = Carrier(db), Carrier(db)
        leaving = keeper(db, clock, "host-a:1", a)
        standby = BindLeaseKeeper(db, clock, [b], holder="host-b:2", poll=0.05)
        await leaving.start()
        await standby.start()
        stop = asyncio.Event()
        running = asyncio.create_task(standby.run(stop))
        try:
            await asyncio.sleep(0.2)
            assert not b.bound  # the lease is current: standing by
            await leaving.close()
            for _ in range(100):  # bound, and the slot says so (written just after the bind)
                if b.bound and b.holder() == ("host-b:2", "bound"):
                    break
                await asyncio.sleep(0.02)
            assert b.bound and b.holder() == ("host-b:2", "bound")
        finally:
            stop.set()
            await standby.close()
            await running

    asyncio.run(scenario())


def test_a_crashed_holder_is_taken_over_once_its_lease_ran_out(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a, b = Carrier(db), Carrier(db)
        await keeper(db, clock, "host-a:1", a).start()  # and then it died, releasing nothing
        standby = keeper(db, clock, "host-b:2", b)
        await standby.start()
        clock.advance(LEASE - 1)
        await standby.step()
        assert not b.bound
        clock.advance(2)
        await standby.step()
        assert b.bound and b.holder() == ("host-b:2", "bound")

    asyncio.run(scenario())


def test_each_carrier_has_its_own_slots(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a1, b1 = Carrier(db, "acme"), Carrier(db, "backup", slots=2)
        a2, b2 = Carrier(db, "acme"), Carrier(db, "backup", slots=2)
        await keeper(db, clock, "host-a:1", a1, b1).start()
        second = keeper(db, clock, "host-b:2", a2, b2)
        await second.start()
        assert (a1.bound, b1.bound, a2.bound, b2.bound) == (True, True, False, True)
        assert (b1.slot, b2.slot) == (1, 2)
        assert second.reach().bound_here == {"backup"}

    asyncio.run(scenario())


class HangingStore:
    """A store whose every call waits until `release` is set: a connection gone dead."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def write(self) -> AbstractContextManager[Any]:
        self.calls += 1
        self.release.wait(10)
        raise ConnectionError("the connection was reset")


def test_a_renewal_that_hangs_unbinds_before_the_lease_runs_out(db: Database, clock: FrozenClock) -> None:
    async def scenario() -> None:
        a = Carrier(db)
        keeping = keeper(db, clock, "host-a:1", a)
        await keeping.start()
        hanging = HangingStore()
        keeping.db = hanging  # type: ignore[assignment]
        clock.advance(2 * LEASE / 3 - 0.5)  # half a second before the moment to unbind
        step = asyncio.create_task(keeping.step())
        await asyncio.sleep(0.1)
        clock.advance(1.0)
        try:
            await asyncio.wait_for(step, 5)  # not waiting for the store past that moment
            assert not a.bound and a.slot is None
            await keeping.step()  # the call still hangs: no second one beside it
            assert hanging.calls == 1
        finally:
            hanging.release.set()
        keeping.db = db
        await asyncio.sleep(0.1)
        await keeping.step()  # the store answers again: the slot is still this process's
        assert a.bound and a.slot == 1

    asyncio.run(scenario())
