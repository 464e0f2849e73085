"""Bind leases shared by two worker processes, against the Node SMSC (the npm `smpp` package),
on both stores.

Each "process" is the worker stack `pigeon worker` runs (`bootstrap.build_workers`), with a
worker id of its own, both in this test's event loop and sharing one store. The SMSC counts
the sessions bound at one time: with ``binds = 1`` it must never see two. What the dispatcher
does with traffic for a carrier bound elsewhere is `pigeon.app.dispatch`'s docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pigeon import bootstrap
from pigeon.carriers.leased import LeasedCarrier
from pigeon.config import Settings
from pigeon.ports import SystemClock
from pigeon.store import binds
from pigeon.store.engine import Database
from pigeon.store.tables import messages
from pigeon.testing import FrozenClock
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import run_within

LEASE = 1.0  # seconds: renewed every third of it; a dead holder's slot is free after it


pytestmark = pytest.mark.usefixtures("npm_smsc")
run = functools.partial(run_within, seconds=50)


def carrier(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "system_id": "pigeon",
        "password": "secret",
        "binds": 1,
        "bind_lease": LEASE,
        "connect_timeout": 0.4,  # a bind is made between two renewals: less than half the lease
        "response_timeout": 2.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
    }


def settings(*carriers: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> Settings:
    tables: dict[str, Any] = {"carriers": list(carriers), "pacing": {"long_code": 100.0}}
    if routes:
        tables["routes"] = routes
    return Settings(file_tables=tables)


class Process:
    """One worker process's stack, running until `stop` (clean) or `crash` (no release)."""

    def __init__(self, name: str, config: Settings, db: Database) -> None:
        self.name = name
        self.workers = bootstrap.build_workers(
            config, db, clock=SystemClock(), worker_id=name, registry=CollectorRegistry()
        )
        self.dispatching = asyncio.Event()  # cleared: its dispatcher waits
        self.dispatching.set()
        dispatcher = self.workers.dispatcher
        real_run = dispatcher.run

        async def run_when_told(stop: asyncio.Event) -> None:
            await self.dispatching.wait()
            await real_run(stop)

        dispatcher.run = run_when_told  # type: ignore[method-assign]
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.workers.run(self._stop), name=self.name)

    async def stop(self) -> None:
        self.dispatching.set()
        self._stop.set()
        if self._task is not None:
            await self._task

    async def crash(self) -> None:
        """Die holding its slots: the lease stays in the store until it runs out. (Its binds
        close, as a dead process's sockets do.)"""
        leases = self.workers.leases
        assert leases is not None
        for keeping in leases._keeping:
            keeping.lease = None  # forget them: nothing is released
        # A renewal in flight at this moment would give a lease back, and the clean stop below
        # would then release it: the slot would be free at once, which is not a crash (it made
        # this test fail now and then on a loaded machine, with messages tried while no process
        # had the carrier bound). A dead process releases nothing, whatever it was doing.
        leases.close = self._unbind_only  # type: ignore[method-assign]
        await self.stop()

    async def _unbind_only(self) -> None:
        leases = self.workers.leases
        assert leases is not None
        leases._closed.set()  # no more renewals: the leases run out
        await asyncio.gather(*(k.carrier.unbind() for k in leases._keeping))


@contextlib.asynccontextmanager
async def processes(*made: Process) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for p in made:
            await p.stop()


def holders(db: Database) -> dict[str, tuple[str | None, str | None]]:
    with db.read() as conn:
        return {r["carrier"]: (r["holder"], r["state"]) for r in binds.list_slots(conn)}


async def until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met in time"
        await asyncio.sleep(0.05)


def statuses(db: Database, sids: list[str]) -> Counter[str]:
    with db.read() as conn:
        rows = conn.execute(sa.select(messages.c.status).where(messages.c.sid.in_(sids))).scalars()
        return Counter(rows)


def delivered(db: Database, sids: list[str]) -> Callable[[], bool]:
    return lambda: statuses(db, sids) == Counter({"delivered": len(sids)})


def send(pipe: Pipeline, count: int, tag: str) -> list[str]:
    pipe.clock.current = datetime.now(UTC)
    return [pipe.send(body=f"{tag} {i}", callback=None) for i in range(count)]


def kinds(pipe: Pipeline, sids: list[str]) -> Counter[str]:
    return Counter(e["kind"] for sid in sids for e in pipe.events(sid))


@pytest.fixture
def pipe(db: Database) -> Iterator[Pipeline]:
    """The test account and its numbers; messages are created at the real time of day."""
    pipeline = make_pipeline(db, FrozenClock(datetime.now(UTC)))
    try:
        yield pipeline
    finally:
        pipeline.spool.stop()


def test_two_processes_share_one_bind_and_the_other_takes_over_after_a_crash(pipe: Pipeline) -> None:
    db = pipe.db

    async def scenario() -> None:
        async with NodeSmsc.running() as smsc:
            config = settings(carrier("node", smsc.port))
            first, second = Process("host-a:1", config, db), Process("host-b:2", config, db)
            async with processes(first, second):
                first.start()
                await until(lambda: holders(db).get("node") == ("host-a:1", "bound"), what="host-a bound")
                second.start()
                await asyncio.sleep(3 * LEASE)  # host-b tries for the slot every third of it
                state = await smsc.state()
                assert [b["status"] for b in state["binds"]] == [0] and state["max_bound"] == 1
                standby = second.workers.carriers["node"]
                assert isinstance(standby, LeasedCarrier) and standby.status()["lease"]["state"] == "standby"

                before = send(pipe, 10, "before")
                await until(delivered(db, before), what="delivered through host-a")
                assert holders(db)["node"] == ("host-a:1", "bound")

                await first.crash()
                after = send(pipe, 10, "after")
                await until(delivered(db, after), timeout=30, what="delivered through host-b")
                assert holders(db)["node"] == ("host-b:2", "bound")

                state = await smsc.state()
                assert [b["status"] for b in state["binds"]] == [0, 0]  # host-a, then host-b
                assert state["max_bound"] == 1  # never two at once
                texts = Counter(s["text"] for s in smsc.accepted())
                assert texts == Counter({f"{tag} {i}": 1 for tag in ("before", "after") for i in range(10)})
                seen = kinds(pipe, before + after)
                assert seen["failover"] == 0 and seen["resend"] == 0
                assert seen["retry"] == 0, "a message was tried with no carrier bound"

    run(scenario)


def test_messages_claimed_where_the_carrier_is_not_bound_are_delivered_by_its_holder(pipe: Pipeline) -> None:
    """host-b holds "backup" only, so it claims, and leaves every message for "node" to
    host-a: none is tried on host-b, failed over to backup or submitted twice."""
    db = pipe.db

    async def scenario() -> None:
        async with NodeSmsc.running() as node, NodeSmsc.running() as backup:
            routes = [{"prefix": "+1", "carriers": ["node"]}, {"prefix": "+44", "carriers": ["backup"]}]
            holder = Process("host-a:1", settings(carrier("node", node.port)), db)
            other = Process(
                "host-b:2", settings(carrier("node", node.port), carrier("backup", backup.port), routes=routes), db
            )
            async with processes(holder, other):
                holder.dispatching.clear()  # host-a binds, but its dispatcher waits
                holder.start()
                await until(lambda: holders(db).get("node") == ("host-a:1", "bound"), what="host-a bound")
                other.start()
                await until(lambda: holders(db).get("backup") == ("host-b:2", "bound"), what="host-b bound")

                sids = send(pipe, 12, "left")
                await until(lambda: offered_to(db, sids) == {"host-a:1"}, what="host-b leaving them to host-a")
                assert kinds(pipe, sids) == Counter({"created": 12}) and node.accepted() == []

                holder.dispatching.set()
                await until(delivered(db, sids), what="delivered by host-a")
                assert Counter(s["text"] for s in node.accepted()) == Counter({f"left {i}": 1 for i in range(12)})
                assert backup.accepted() == []
                node_state = await node.state()
                assert len(node_state["binds"]) == 1 and node_state["max_bound"] == 1
                seen = kinds(pipe, sids)
                assert seen["failover"] == 0 and seen["retry"] == 0 and seen["resend"] == 0
                with db.read() as conn:
                    attempts = conn.execute(sa.select(messages.c.attempts).where(messages.c.sid.in_(sids))).scalars()
                    assert set(attempts) == {1}

    run(scenario)


def offered_to(db: Database, sids: list[str]) -> set[str | None]:
    with db.read() as conn:
        return set(conn.execute(sa.select(messages.c.offered_to).where(messages.c.sid.in_(sids))).scalars())
