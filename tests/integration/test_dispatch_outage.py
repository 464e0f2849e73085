"""The store out of reach while a dispatcher's submits are out, on both stores
(`pigeon.app.dispatch_outage`): the carriers' answers are kept and recorded once the store
answers again, so that no message goes to the carrier twice.

The first test takes the store away for real: PostgreSQL refuses connections to the database
and ends the open ones, SQLite is locked by another program past a short busy timeout. The
others cut one dispatcher off (`CutOff`: the real store, whose write transactions that
dispatcher sees fail as an unreachable store's do) while another still reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.app.dispatch import DispatchRound, DispatchSettings
from pigeon.domain.errors import StoreUnavailable
from pigeon.ports import OutboundMessage, SubmitAck
from pigeon.store.engine import Database, normalise_url
from pigeon.workers.dispatcher import DispatcherWorker
from tests.conftest import POSTGRES_URL
from tests.integration.pipeline import OTHER_SENDER, Pipeline, ScriptedCarrier

R = TypeVar("R")
LEASE = DispatchSettings().lease


# -- a real outage --------------------------------------------------------------------------------


class Outage:
    """The store out of reach from `begin` to `end`; `errors`: what the engine's connections
    met meanwhile (each try of a transaction meets one)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.errors = 0
        self.down = False
        sa.event.listen(db.engine, "handle_error", self._count)

    def _count(self, _context: Any) -> None:
        self.errors += self.down

    def begin(self) -> None:
        if not self.down:
            self.down = True
            self._begin()

    def end(self) -> None:
        if self.down:
            self._end()
            self.down = False

    async def failed(self, times: int) -> None:
        while self.errors < times:
            await asyncio.sleep(0.01)

    def _begin(self) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError


class LockedSqlite(Outage):
    """Another program (the sqlite3 shell, a backup tool) holds the database's write lock."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.path = str(db.engine.url.database)

        @sa.event.listens_for(db.engine, "connect")
        def _impatient(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA busy_timeout=100")

        db.engine.dispose()  # the connections made so far would wait 30 s
        self.other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _begin(self) -> None:
        self.other.execute("BEGIN IMMEDIATE")

    def _end(self) -> None:
        self.other.execute("ROLLBACK")


class PostgresDown(Outage):
    """The server refuses connections to the database and ends those it has (a restart, a
    failover): ALLOW_CONNECTIONS off, which keeps out even a superuser, and pg_terminate_backend."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.name = str(db.engine.url.database)
        self.admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def _begin(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                {"db": self.name},
            )

    def _end(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@pytest.fixture
def outage(pipe: Pipeline) -> Iterator[Outage]:
    taken: Outage = LockedSqlite(pipe.db) if pipe.db.is_sqlite else PostgresDown(pipe.db)
    try:
        yield taken
    finally:
        taken.end()


class OutageAtSubmit(ScriptedCarrier):
    """Accepts every submit; the store goes out of reach while the first group's are out."""

    def __init__(self, name: str, outage: Outage) -> None:
        super().__init__(name)
        self.outage: Outage | None = outage

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        if self.outage is not None:
            self.outage.begin()
        answer = await super().submit(message)
        self.outage = None  # the group's other submits are out already: once is enough
        return answer


def assert_sent_once(pipe: Pipeline, sids: list[str], carrier: ScriptedCarrier) -> None:
    assert Counter(m.message_sid for m in carrier.submitted) == dict.fromkeys(sids, 1)  # one submit each
    for sid in sids:
        message = pipe.message(sid)
        assert (message["status"], message["carrier"], message["claimed_by"]) == ("sent", carrier.name, None)
        [part] = pipe.parts(sid)
        assert part["carrier_message_id"].startswith(f"{carrier.name}-")
        assert pipe.events(sid, "resend") == [] and pipe.events(sid, "accepted_late") == []
        assert [k for k, s in pipe.timeline(sid) if s == "sent"] == ["status"]


def test_the_carriers_answers_outlive_an_outage_and_no_message_is_submitted_twice(
    pipe: Pipeline, outage: Outage
) -> None:
    sids = [pipe.send(), pipe.send(from_=OTHER_SENDER)]  # two senders: both due now, one group
    carrier = OutageAtSubmit("acme", outage)

    async def outage_while_recording() -> None:
        sending = asyncio.ensure_future(pipe.round("dispatcher-1", route=[carrier]).run_once())
        failing = asyncio.ensure_future(outage.failed(3))
        await asyncio.wait({sending, failing}, return_when=asyncio.FIRST_COMPLETED)
        failing.cancel()
        outage.end()
        # Before the answers were kept, the round failed here and they were dropped; the
        # worker's loop logs that and goes on.
        with contextlib.suppress(StoreUnavailable):
            assert await sending == 2

    asyncio.run(outage_while_recording())
    pipe.clock.advance(LEASE.total_seconds() + 1)  # what was left sending is anyone's again
    pipe.dispatch("dispatcher-2", route=[carrier])
    assert_sent_once(pipe, sids, carrier)
    assert outage.errors >= 3  # the store did refuse the record, three times at least
    assert [pipe.callback_statuses(sid) for sid in sids] == [["sending", "sent"]] * 2


# -- one dispatcher cut off -----------------------------------------------------------------------


class CutOff(Database):
    """The real store as a dispatcher cut off from it sees it: while `down`, each write
    transaction fails as one does when the server cannot be reached, having written nothing."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.engine)
        self.down = False
        self.refused = 0

    def transact(self, fn: Callable[[Connection], R], *, conflict_retries: int = 0) -> R:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("the database could not be reached: connection refused")
        return super().transact(fn, conflict_retries=conflict_retries)

    async def refusing(self, times: int) -> None:
        while self.refused < times:
            await asyncio.sleep(0.005)


class CutOffAtSubmit(ScriptedCarrier):
    """Accepts every submit; the dispatcher is cut off from the store while they are out."""

    def __init__(self, name: str, store: CutOff) -> None:
        super().__init__(name)
        self.store = store

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        self.store.down = True
        return await super().submit(message)


class GatedCarrier(ScriptedCarrier):
    """Accepts every submit once `gate` is open; `waiting`: the submits that came."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        self.waiting += 1
        await self.gate.wait()
        return await super().submit(message)


@pytest.fixture
def quick_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pigeon.app.dispatch_outage.FIRST_PAUSE", 0.005)
    monkeypatch.setattr("pigeon.app.dispatch_outage.MOST_PAUSE", 0.02)


def cut_off_round(pipe: Pipeline, worker_id: str = "slow", **settings: Any) -> tuple[DispatchRound, CutOff]:
    store = CutOff(pipe.db)
    carrier = CutOffAtSubmit(worker_id, store)
    settings.setdefault("lookahead", timedelta(0))
    return DispatchRound(
        store, lambda _to: [carrier], pipe.clock, worker_id=worker_id, settings=DispatchSettings(**settings)
    ), store


def outage_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pigeon.app.dispatch_outage"]


@pytest.mark.usefixtures("quick_tries")
def test_an_outage_is_logged_once_and_its_end_once(pipe: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    sid = pipe.send()
    slow, store = cut_off_round(pipe)

    async def go() -> int:
        running = asyncio.ensure_future(slow.run_once())
        await store.refusing(20)
        store.down = False
        return await running

    with caplog.at_level(logging.INFO, logger="pigeon.app.dispatch_outage"):
        assert asyncio.run(go()) == 1
    said = outage_records(caplog)
    assert [r.levelno for r in said] == [logging.WARNING, logging.INFO]
    assert "could not be reached" in said[0].getMessage() and said[1].__dict__["tries"] > 20
    assert pipe.status(sid) == "sent" and pipe.events(sid, "resend") == []


@pytest.mark.usefixtures("quick_tries")
def test_answers_recorded_after_a_lost_lease_leave_the_other_dispatchers_send_as_it_was(pipe: Pipeline) -> None:
    """The outage outlasted the lease and another dispatcher sent the messages again: the
    record keeps this copy's ids as accepted late and changes nothing the other recorded."""
    sids = [pipe.send(), pipe.send(from_=OTHER_SENDER)]
    slow, store = cut_off_round(pipe)
    rescuer = ScriptedCarrier("rescuer")

    async def go() -> int:
        running = asyncio.ensure_future(slow.run_once())
        await store.refusing(2)
        pipe.clock.advance(LEASE.total_seconds() + 1)
        assert await pipe.round("rescuer", route=[rescuer]).run_once() == 2
        store.down = False
        return await running

    assert asyncio.run(go()) == 2
    for n, sid in enumerate(sids):
        message = pipe.message(sid)
        assert (message["status"], message["carrier"], message["attempts"]) == ("sent", "rescuer", 2)
        [resend] = pipe.events(sid, "resend")  # the rescuer's: the outage outlasted the lease
        assert "slow" in resend["detail"]["reason"]
        [late] = pipe.events(sid, "accepted_late")
        assert late["detail"]["carrier"] == "slow" and late["detail"]["attempt"] == 1
        assert {p["carrier_message_id"].split("-")[0] for p in pipe.parts(sid)} == {"slow", "rescuer"}
        assert [k for k, s in pipe.timeline(sid) if s == "sent"] == ["status"]
        assert pipe.callback_statuses(sid) == ["sending", "sent"]
        assert message["late_copy"], n  # its receipts count per copy


@pytest.mark.usefixtures("quick_tries")
def test_answers_recorded_while_another_dispatchers_resend_is_out_send_the_message(pipe: Pipeline) -> None:
    """The other dispatcher claimed the messages and its submits are still out when the record
    goes through: this copy reached the carrier first and sends the message; the other's
    answer, when it comes, is the copy accepted late (and its refusal would change nothing)."""
    sid = pipe.send()
    slow, store = cut_off_round(pipe)
    rescuer = GatedCarrier("rescuer")

    async def go() -> None:
        running = asyncio.ensure_future(slow.run_once())
        await store.refusing(2)
        pipe.clock.advance(LEASE.total_seconds() + 1)
        resending = asyncio.ensure_future(pipe.round("rescuer", route=[rescuer]).run_once())
        while not rescuer.waiting:
            await asyncio.sleep(0.005)
        store.down = False
        assert await running == 1
        assert (pipe.status(sid), pipe.message(sid)["carrier"]) == ("sent", "slow")
        rescuer.gate.set()
        assert await resending == 1

    asyncio.run(go())
    message = pipe.message(sid)
    assert (message["status"], message["carrier"], message["claimed_by"]) == ("sent", "slow", None)
    [late] = pipe.events(sid, "accepted_late")
    assert late["detail"]["carrier"] == "rescuer"
    assert [k for k, s in pipe.timeline(sid) if s == "sent"] == ["status"]
    assert pipe.callback_statuses(sid) == ["sending", "sent"]


@pytest.mark.usefixtures("quick_tries")
def test_a_receipt_that_comes_while_the_record_waits_is_applied_by_the_record(pipe: Pipeline) -> None:
    sid = pipe.send()
    slow, store = cut_off_round(pipe)

    async def go() -> int:
        running = asyncio.ensure_future(slow.run_once())
        await store.refusing(2)
        # The carrier's receipt reaches the store (another process's receiver) before its
        # submit's answer does: parked until the answer is recorded.
        assert await asyncio.to_thread(pipe.receipt, "slow-1-0", "DELIVRD", carrier="slow") is None
        assert pipe.unmatched() == 1
        store.down = False
        return await running

    assert asyncio.run(go()) == 1
    assert pipe.status(sid) == "delivered" and pipe.unmatched() == 0
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


@pytest.mark.usefixtures("quick_tries")
def test_the_lease_is_renewed_while_the_record_waits_for_the_store(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answers the renewals but not yet the record (it came back between them): the
    messages stay this dispatcher's, and no other dispatcher claims them meanwhile."""
    sid = pipe.send()
    lease = timedelta(milliseconds=150)
    carrier = ScriptedCarrier("acme")
    round_ = pipe.round(route=[carrier], lease=lease)
    from pigeon.app import dispatch

    real = dispatch.record
    failing = True

    def record(conn: Connection, *args: Any, **kw: Any) -> None:
        if failing:
            raise StoreUnavailable("the connection to the database was lost")
        real(conn, *args, **kw)

    monkeypatch.setattr(dispatch, "record", record)

    def claimed_until() -> datetime:
        until = pipe.message(sid)["claimed_until"]
        assert isinstance(until, datetime)
        return until

    async def go() -> int:
        nonlocal failing
        running = asyncio.ensure_future(round_.run_once())
        while not carrier.submitted:
            await asyncio.sleep(0.005)
        pipe.clock.advance(60)  # the lease taken at the claim has run out
        while claimed_until() <= pipe.clock.now():
            await asyncio.sleep(0.01)
        assert claimed_until() == pipe.clock.now() + lease
        assert await pipe.round("rescuer", route=[carrier]).run_once() == 0
        failing = False
        return await running

    assert asyncio.run(go()) == 1
    assert pipe.status(sid) == "sent" and len(carrier.submitted) == 1 and pipe.events(sid, "resend") == []


def test_an_error_other_than_the_store_out_of_reach_is_not_tried_again(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the record fails the round at once, as before: another try would fail the
    same way, for ever."""
    sid = pipe.send()
    from pigeon.app import dispatch

    calls = 0

    def record(*_args: Any, **_kw: Any) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug")

    monkeypatch.setattr(dispatch, "record", record)
    with pytest.raises(ValueError, match="a bug"):
        pipe.dispatch(route=[ScriptedCarrier("acme")])
    assert calls == 1
    assert pipe.status(sid) == "sending"  # its lease runs out, and it goes again, as before


# -- stopping -------------------------------------------------------------------------------------


def run_worker_until(
    round_: DispatchRound, ready: Callable[[], Awaitable[None]], after_stop: Callable[[], Awaitable[None]]
) -> None:
    """Run a dispatcher worker on `round_`; once `ready`, stop it (SIGTERM) and run
    `after_stop`; return when the worker has stopped."""

    async def go() -> None:
        worker = DispatcherWorker(round_, concurrency=1, idle=0.01, rematch_every=10)
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))
        await ready()
        stop.set()
        await after_stop()
        await running

    asyncio.run(go())


async def nothing() -> None:
    return None


@pytest.mark.usefixtures("quick_tries")
def test_a_stop_during_an_outage_gives_up_after_the_grace_and_says_what_may_go_again(
    pipe: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    sids = [pipe.send(), pipe.send(from_=OTHER_SENDER)]
    slow, store = cut_off_round(pipe, record_grace=timedelta(milliseconds=100))
    with caplog.at_level(logging.INFO, logger="pigeon.app.dispatch_outage"):
        run_worker_until(slow, lambda: store.refusing(3), nothing)
    gave_up = outage_records(caplog)[-1]
    assert gave_up.levelno == logging.ERROR
    assert "for 2 messages" in gave_up.getMessage() and "submitted again" in gave_up.getMessage()
    assert [pipe.status(sid) for sid in sids] == ["sending", "sending"]  # theirs once the lease runs out


@pytest.mark.usefixtures("quick_tries")
def test_a_stop_during_an_outage_still_records_what_the_store_takes_within_the_grace(pipe: Pipeline) -> None:
    sid = pipe.send()
    slow, store = cut_off_round(pipe, record_grace=timedelta(seconds=30))

    async def store_back_a_few_tries_later() -> None:
        await store.refusing(store.refused + 3)
        store.down = False

    run_worker_until(slow, lambda: store.refusing(3), store_back_a_few_tries_later)
    assert pipe.status(sid) == "sent" and pipe.events(sid, "resend") == []
