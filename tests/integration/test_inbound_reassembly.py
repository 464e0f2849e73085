"""Concatenated inbound messages put together in the store, on SQLite and PostgreSQL.

Each `CarrierEventSink` below has a `Database` of its own, as a separate process would: what
one took, another finishes, and a new one (a restart) carries on. Messages go through the
real intake, so "one message" means one inbound row in the messages table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import reassembly
from pigeon.app.carrier_events import CarrierEventSink
from pigeon.ports import InboundPart
from pigeon.store import alerts as alert_store
from pigeon.store.engine import Database
from pigeon.store.messages import list_events
from pigeon.store.tables import inbound_parts, messages
from pigeon.testing import FrozenClock

OUR_NUMBER = "+14155550100"
HANDSET = "+447700900123"
TIMEOUT = 120.0


@pytest.fixture
def number(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="reassembly tests", now=clock.now())
        number_use.provision(conn, account_sid=account["sid"], phone_number=OUR_NUMBER, now=clock.now())
    return OUR_NUMBER


@pytest.fixture
def processes(database_url: str, clock: FrozenClock, number: str) -> Iterator[list[CarrierEventSink]]:
    """Two sinks over one store, each with its own engine and pool, like two worker processes."""
    dbs = [Database.from_url(database_url) for _ in range(2)]
    yield [CarrierEventSink(d, clock, base_url="http://pigeon.test") for d in dbs]
    for d in dbs:
        d.dispose()


def part(sequence: int, total: int, text: str, *, reference: int = 0x42, data: bytes | None = None) -> InboundPart:
    return InboundPart(
        carrier="acme",
        sender=HANDSET,
        recipient=OUR_NUMBER,
        reference_bits=8,
        reference=reference,
        total=total,
        sequence=sequence,
        data=data if data is not None else text.encode("gsm03.38"),
        data_coding=8 if data is not None else 0,
        timeout=TIMEOUT,
    )


def inbound(db: Database) -> list[dict[str, Any]]:
    q = sa.select(messages).where(messages.c.direction == "inbound").order_by(messages.c.date_created, messages.c.sid)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def received_raw(db: Database, sid: str) -> dict[str, Any]:
    with db.read() as conn:
        (event,) = [e for e in list_events(conn, sid) if e["kind"] == "received"]
    return dict(event["detail"]["raw"])


def stored(db: Database) -> list[tuple[int, bool]]:
    """(part number, handed over) of every stored part."""
    q = sa.select(inbound_parts.c.sequence, inbound_parts.c.handed_over_at).order_by(inbound_parts.c.sequence)
    with db.read() as conn:
        return [(r.sequence, r.handed_over_at is not None) for r in conn.execute(q)]


def test_parts_taken_by_two_processes_make_one_message(db: Database, processes: list[CarrierEventSink]) -> None:
    a, b = processes
    assert a.take_inbound_part(part(1, 3, "Parts on one bind, ")) is None
    assert b.take_inbound_part(part(3, 3, "and the last.")) is None
    assert stored(db) == [(1, False), (3, False)]
    intake = a.take_inbound_part(part(2, 3, "more on another, "))
    assert intake is not None and intake.message_sid
    (message,) = inbound(db)
    assert message["sid"] == intake.message_sid
    assert (message["from_"], message["to"], message["num_segments"]) == (HANDSET, OUR_NUMBER, 3)
    assert message["body"] == "Parts on one bind, more on another, and the last."
    assert stored(db) == [(1, True), (2, True), (3, True)]
    raw = received_raw(db, message["sid"])
    assert raw["concatenation"] == {"reference": 0x42, "bits": 8, "total": 3, "received": [1, 2, 3]}
    assert "incomplete" not in raw


def test_a_restart_between_parts_loses_nothing(
    database_url: str, db: Database, clock: FrozenClock, number: str
) -> None:
    first = Database.from_url(database_url)
    CarrierEventSink(first, clock, base_url="http://pigeon.test").take_inbound_part(part(1, 2, "Before the crash, "))
    first.dispose()  # the process goes away; its memory with it
    clock.advance(30)
    restarted = Database.from_url(database_url)
    try:
        sink = CarrierEventSink(restarted, clock, base_url="http://pigeon.test")
        assert sink.take_inbound_part(part(2, 2, "after the restart.")) is not None
    finally:
        restarted.dispose()
    assert [m["body"] for m in inbound(db)] == ["Before the crash, after the restart."]


def test_a_character_split_across_parts_taken_by_two_processes_decodes(
    db: Database, processes: list[CarrierEventSink]
) -> None:
    data = "ok 👍 done".encode("utf-16-be")
    cut = len("ok ".encode("utf-16-be")) + 2  # between the two halves of the surrogate pair
    a, b = processes
    a.take_inbound_part(part(1, 2, "", data=data[:cut]))
    b.take_inbound_part(part(2, 2, "", data=data[cut:]))
    assert [m["body"] for m in inbound(db)] == ["ok 👍 done"]


def test_duplicate_parts_add_no_content_and_no_message(
    db: Database, clock: FrozenClock, processes: list[CarrierEventSink]
) -> None:
    a, b = processes
    a.take_inbound_part(part(1, 2, "Said once, "))
    assert b.take_inbound_part(part(1, 2, "Said once, ")) is None  # its deliver_sm_resp was lost
    assert stored(db) == [(1, False)]
    assert a.take_inbound_part(part(2, 2, "heard once.")) is not None
    # The SMSC missed our answer to the last part and sends it, and the first, again.
    assert b.take_inbound_part(part(2, 2, "heard once.")) is None
    assert a.take_inbound_part(part(1, 2, "Said once, ")) is None
    assert [m["body"] for m in inbound(db)] == ["Said once, heard once."]
    clock.advance(TIMEOUT + 1)
    assert a.sweep_inbound_parts() == 0  # a resent copy did not start a message of its own
    assert stored(db) == []  # and what was kept to recognise copies is gone after the window
    assert len(inbound(db)) == 1


def test_a_reused_reference_after_the_hand_over_is_a_new_message(
    db: Database, clock: FrozenClock, processes: list[CarrierEventSink]
) -> None:
    a, b = processes
    a.take_inbound_part(part(1, 2, "First message, "))
    a.take_inbound_part(part(2, 2, "done."))
    clock.advance(5)
    # The handset's 8-bit reference came round again within the window.
    b.take_inbound_part(part(1, 2, "Second message, "))
    assert b.take_inbound_part(part(2, 2, "also done.")) is not None
    assert [m["body"] for m in inbound(db)] == ["First message, done.", "Second message, also done."]


def test_the_sweep_hands_an_incomplete_message_over_once(
    db: Database, clock: FrozenClock, processes: list[CarrierEventSink]
) -> None:
    a, b = processes
    a.take_inbound_part(part(1, 3, "one "))
    clock.advance(10)
    b.take_inbound_part(part(3, 3, "three"))
    clock.advance(TIMEOUT - 11)
    assert a.sweep_inbound_parts() == b.sweep_inbound_parts() == 0  # the first part is not due yet
    clock.advance(2)
    assert a.sweep_inbound_parts() + b.sweep_inbound_parts() == 1
    assert a.sweep_inbound_parts() == b.sweep_inbound_parts() == 0
    (message,) = inbound(db)
    assert (message["body"], message["num_segments"]) == ("one three", 2)
    raw = received_raw(db, message["sid"])
    assert raw["incomplete"] is True and raw["missing_parts"] == [2]
    assert raw["concatenation"]["received"] == [1, 3]
    with db.read() as conn:
        alerts = alert_store.list_alerts(conn, resource_sid=message["sid"])
    [missing] = [a for a in alerts if a["error_code"] == 30009]  # beside the number's lack of a webhook
    assert "without part(s) 2" in missing["alert_text"]
    # The missing part turns up after all: shown as a message of its own, not dropped.
    assert a.take_inbound_part(part(2, 3, "two ")) is None
    clock.advance(TIMEOUT + 1)
    assert b.sweep_inbound_parts() == 1
    assert [m["body"] for m in inbound(db)] == ["one three", "two "]


def test_sweepers_racing_over_the_same_messages_hand_each_over_once(
    db: Database, clock: FrozenClock, processes: list[CarrierEventSink]
) -> None:
    for reference in range(20):
        processes[reference % 2].take_inbound_part(part(1, 2, f"message {reference}", reference=reference))
    clock.advance(TIMEOUT + 1)
    counts: list[int] = []
    threads = [threading.Thread(target=lambda s=s: counts.append(s.sweep_inbound_parts(limit=100))) for s in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 20
    assert sorted(m["body"] for m in inbound(db)) == sorted(f"message {r}" for r in range(20))


def test_last_parts_committed_at_once_by_two_processes_complete_the_message(
    db: Database, processes: list[CarrierEventSink]
) -> None:
    """Parts 2 and 3 of each message go to two processes at the same moment: without the
    message's lock each would see the other's part missing and neither would finish it."""
    references = range(15)
    for reference in references:
        processes[0].take_inbound_part(part(1, 3, f"{reference}: a ", reference=reference))
    barrier = threading.Barrier(2)
    completed: list[int] = []

    def take(sink: CarrierEventSink, sequence: int) -> None:
        for reference in references:
            barrier.wait()
            if sink.take_inbound_part(part(sequence, 3, "bc"[sequence - 2] + " ", reference=reference)):
                completed.append(reference)

    threads = [threading.Thread(target=take, args=(s, n)) for s, n in zip(processes, (2, 3), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(completed) == list(references)
    assert sorted(m["body"] for m in inbound(db)) == sorted(f"{r}: a b c " for r in references)


def test_a_crash_before_the_commit_leaves_the_parts_for_the_resent_last_part(
    db: Database, clock: FrozenClock, processes: list[CarrierEventSink]
) -> None:
    a, b = processes
    a.take_inbound_part(part(1, 2, "Nothing recorded, "))

    class Crash(Exception):
        pass

    with pytest.raises(Crash), a.db.write() as conn:
        message = reassembly.take_part(conn, part(2, 2, "nothing lost."), now=clock.now())
        assert message is not None
        a._receive(conn, message)
        raise Crash  # the process dies before the commit; the SMSC never got our answer
    assert inbound(db) == [] and stored(db) == [(1, False)]
    assert b.take_inbound_part(part(2, 2, "nothing lost.")) is not None  # the SMSC resends it
    assert [m["body"] for m in inbound(db)] == ["Nothing recorded, nothing lost."]
