"""A dispatcher cut off from PostgreSQL inside its claim (a network partition without a reset,
a process stopped, a VM paused) keeps its locks until the server ends its session. The other
dispatchers' claims go on meanwhile: they do not wait for its senders' pacing rows, and the
stuck sender's messages go out once each, at the sender's pace, when it is over.

PostgreSQL only: on SQLite one writer at a time claims, and a writer cannot stop half-way
while holding the database from the others for longer than its busy timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app.busy_senders import RETRY
from pigeon.app.dispatch import DispatchSettings, claim, mark_sending, record, submit
from pigeon.ports import OutboundMessage, SubmitAck
from pigeon.store.engine import Database
from pigeon.store.tables import sender_pacing
from pigeon.testing import FrozenClock
from tests.integration.pipeline import OTHER_SENDER, SENDER, ScriptedCarrier, make_pipeline
from tests.integration.test_dispatch_media import MEDIA

pytestmark = pytest.mark.postgres

#: How long a test waits for a dispatcher that should not be waiting at all: past it, the
#: dispatcher is taken to be held up behind the stuck one (the test fails, it does not hang).
HELD_UP = 20.0


class Runner:
    """`fn` in a thread of its own: its result, or what it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc

    def finished(self, timeout: float = HELD_UP) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


class Freeze:
    """Stops the first claim that locks senders' pacing rows just after it locked some (a new
    sender's row is made first), as a process stopped there would be (SIGSTOP, a VM paused),
    until `thaw` is set."""

    def __init__(self) -> None:
        self.frozen = threading.Event()
        self.thaw = threading.Event()
        self.backend_pid: int | None = None

    def __call__(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if self.frozen.is_set():
            return
        if "sender_pacing" in statement and "FOR UPDATE" in statement and cursor.rowcount > 0:
            self.backend_pid = conn.connection.dbapi_connection.info.backend_pid
            self.frozen.set()
            self.thaw.wait(timeout=120)


def _submitted(carrier: ScriptedCarrier) -> list[str]:
    return [m.message_sid for m in carrier.submitted]


def _end_session(db: Database, pid: int) -> None:
    """What the server does to a session idle in a transaction past its timeout."""
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()


@pytest.mark.parametrize("ending", ["the stuck dispatcher resumes", "the server ends its session"])
def test_a_dispatcher_stuck_inside_its_claim_holds_up_no_other_sender(
    pg: Database, clock: FrozenClock, ending: str
) -> None:
    pipe = make_pipeline(pg, clock)
    carrier = ScriptedCarrier("c1")
    freeze = Freeze()
    stuck: Runner | None = None
    sa.event.listen(pg.engine, "after_cursor_execute", freeze)
    try:
        a1, a2, a3 = pipe.send_in_order(3)  # SENDER's, a long code: one a second
        b1 = pipe.send(from_=OTHER_SENDER)

        # The stuck dispatcher claims SENDER's first message and stops, its pacing row locked.
        stuck = Runner(lambda: pipe.dispatch("stuck", route=[carrier], batch=1))
        assert freeze.frozen.wait(timeout=HELD_UP)

        # Another dispatcher claims what is due: SENDER's other two and OTHER_SENDER's one.
        other = Runner(lambda: pipe.dispatch("other", route=[carrier]))
        held_up = not other.finished()
        if held_up:
            freeze.thaw.set()  # before failing: the held-up dispatcher can then end
        assert not held_up, "the other dispatcher's claim waited for the stuck one"
        assert other.error is None
        assert other.result == 1
        assert _submitted(carrier) == [b1]  # sent; SENDER's left for later, not sent unpaced
        for sid in (a2, a3):
            msg = pipe.message(sid)
            assert (msg["status"], msg["attempts"], msg["claimed_by"]) == ("queued", 0, None)
        assert pipe.dispatch("other", route=[carrier]) == 0  # not taken again at once

        if ending == "the server ends its session":
            assert freeze.backend_pid is not None
            _end_session(pg, freeze.backend_pid)
            freeze.thaw.set()
            assert stuck.finished()
            assert stuck.error is not None  # its claim was rolled back: nothing of it stands
            assert (pipe.status(a1), pipe.message(a1)["claimed_by"]) == ("queued", None)
        else:
            freeze.thaw.set()
            assert stuck.finished()
            assert stuck.error is None and stuck.result == 1  # it sends what it claimed

        clock.advance(10)
        for _ in range(5):
            pipe.dispatch("other", route=[carrier])
            clock.advance(1)
        assert sorted(_submitted(carrier)) == sorted([a1, a2, a3, b1])  # each once
        sent = sorted(pipe.message(s)["date_sent"] for s in (a1, a2, a3))
        assert all(later - earlier >= timedelta(seconds=1) for earlier, later in pairwise(sent))
    finally:
        freeze.thaw.set()
        if stuck is not None:
            stuck.finished()
        sa.event.remove(pg.engine, "after_cursor_execute", freeze)
        pipe.spool.stop()


class _HeldRow:
    """A sender's pacing row held by a transaction left open, as a stuck claim holds it."""

    def __init__(self, db: Database, sender: str) -> None:
        self._conn = db.engine.connect()
        self._conn.begin()
        row = self._conn.execute(
            sa.select(sender_pacing).where(sender_pacing.c.sender == sender).with_for_update()
        ).first()
        assert row is not None  # the sender has sent before

    def end(self) -> None:
        if not self._conn.closed:
            self._conn.rollback()
            self._conn.close()


def test_a_dispatcher_that_found_a_sender_busy_does_not_wait_for_it_again_for_a_while(
    pg: Database, clock: FrozenClock
) -> None:
    """Each round that met the busy sender's messages would otherwise wait again; with a backlog
    from that sender at the head of the queue, every round would."""
    pipe = make_pipeline(pg, clock)
    pipe.send()  # SENDER's row exists: it has sent before
    pipe.dispatch()
    carrier = ScriptedCarrier("c1")
    waits: list[str] = []

    def count_waits(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "sender_pacing" in statement and "FOR UPDATE" in statement and "SKIP LOCKED" not in statement:
            waits.append(statement)

    held = _HeldRow(pg, SENDER)
    dispatcher = pipe.round("other", route=[carrier])
    sa.event.listen(pg.engine, "before_cursor_execute", count_waits)
    try:
        sid, other = pipe.send(), pipe.send(from_=OTHER_SENDER)
        first = Runner(lambda: asyncio.run(dispatcher.run_once()))
        assert first.finished(), "the claim waited for the held row"
        assert (first.error, first.result, _submitted(carrier)) == (None, 1, [other])
        assert len(waits) == 1  # waited once, in vain (for both senders' rows, in one statement)
        clock.advance(RETRY.total_seconds() + 1)
        second = Runner(lambda: asyncio.run(dispatcher.run_once()))
        assert second.finished()
        assert (second.error, second.result) == (None, 0)
        assert pipe.message(sid)["claimed_by"] is None  # claimed again, and put back again
        assert len(waits) == 1  # without waiting for the row this time
        held.end()
        clock.advance(RETRY.total_seconds() + 1)
        assert asyncio.run(dispatcher.run_once()) == 1  # free again: taken without waiting
        assert _submitted(carrier) == [other, sid]
    finally:
        sa.event.remove(pg.engine, "before_cursor_execute", count_waits)
        held.end()
        pipe.spool.stop()


class _HoldingCarrier(ScriptedCarrier):
    """Takes every submit, but answers only once `answer` is set."""

    def __init__(self, name: str, *, carries_media: bool = True) -> None:
        super().__init__(name, carries_media=carries_media)
        self.submitting, self.answer = threading.Event(), threading.Event()

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        self.submitting.set()
        await asyncio.to_thread(self.answer.wait, HELD_UP)
        return await super().submit(message)


def test_recording_media_sent_as_links_does_not_wait_for_a_stuck_claims_pacing_row(
    pg: Database, clock: FrozenClock
) -> None:
    """The record moves the sender's next slot on by the extra segments the links took; waiting
    for the row there, the record would wait until the server ended the stuck session, the
    messages' leases would run out meanwhile, and another dispatcher would send them again."""
    pipe = make_pipeline(pg, clock)
    service = pipe.add_service(SENDER)
    carrier = _HoldingCarrier("text", carries_media=False)
    sid = pipe.send(from_=None, service=service, body="Your order is ready. " * 7, media=MEDIA)
    start = clock.now()
    round_ = Runner(lambda: pipe.dispatch(route=[carrier]))
    held: _HeldRow | None = None
    try:
        assert carrier.submitting.wait(HELD_UP)  # claimed, marked sending and committed
        held = _HeldRow(pg, SENDER)
        carrier.answer.set()
        recorded = round_.finished()
        if not recorded:
            held.end()  # before failing: the record can then end
        assert recorded, "the record waited for the held row"
        assert (round_.error, round_.result, pipe.status(sid)) == (None, 1, "sent")
        assert pipe.message(sid)["num_segments"] == 2  # what went out, as before
        held.end()
        assert pipe.next_free(SENDER) == start + timedelta(seconds=1)  # the claim's pace stands
    finally:
        carrier.answer.set()
        round_.finished()
        if held is not None:
            held.end()
        pipe.spool.stop()


def _ended(db: Database, pid: int, *, within: float = HELD_UP) -> bool:
    """Whether the server ends session `pid` within `within` seconds."""
    deadline = time.monotonic() + within
    with db.engine.connect() as watch:
        while time.monotonic() < deadline:
            there = watch.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
            if not there.scalar_one():
                return True
            watch.rollback()
            time.sleep(0.05)
    return False


def test_the_server_ends_a_claim_stopped_half_way_after_a_third_of_its_lease(pg: Database, clock: FrozenClock) -> None:
    """Not after the 5 minutes any session may sit idle in a transaction: its locks go, and its
    messages are another dispatcher's to send. Resumed past its lease, it would have committed
    leases already run out, and its messages would have been sent twice."""
    pipe = make_pipeline(pg, clock)
    carrier = ScriptedCarrier("c1")
    try:
        sid = pipe.send()
        with pg.engine.connect() as conn:
            conn.begin()
            jobs = claim(
                conn, now=clock.now(), worker_id="stuck", settings=DispatchSettings(lease=timedelta(seconds=3))
            )
            assert [j.message["sid"] for j in jobs] == [sid]
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            assert _ended(pg, pid), "the stopped claim's session is still there"
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT 1"))  # what the dispatcher finds if it resumes
        assert pipe.dispatch("other", route=[carrier]) == 1
        assert _submitted(carrier) == [sid]
    finally:
        pipe.spool.stop()


def test_the_server_ends_a_record_stopped_half_way_after_a_third_of_its_lease(pg: Database, clock: FrozenClock) -> None:
    """A record holds the sent messages' rows and a usage row of their account, which other
    dispatchers' records of that account wait for."""
    pipe = make_pipeline(pg, clock)
    settings = DispatchSettings(lease=timedelta(seconds=3), lookahead=timedelta(0))
    try:
        pipe.send()
        with pg.write() as conn:
            jobs = mark_sending(conn, claim(conn, now=clock.now(), worker_id="d1", settings=settings), now=clock.now())
        outcomes = [asyncio.run(submit(jobs[0], [ScriptedCarrier("c1")]))]
        with pg.engine.connect() as conn:
            conn.begin()
            record(conn, outcomes, now=clock.now(), settings=settings)
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            assert _ended(pg, pid), "the stopped record's session is still there"
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT 1"))
    finally:
        pipe.spool.stop()
