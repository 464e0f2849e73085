"""A number taken off its account (released) takes the account's messages still waiting to go
from it with it: they fail with 21606 in the release's transaction, each with its timeline
entry, alert and callback, instead of going out later from a number the account no longer
holds (and that another account may have bought). What the carrier has already is left alone.
Both stores, and on PostgreSQL a dispatcher taking one of them at that moment."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.status import MessageStatus
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages, transition
from pigeon.testing import FrozenClock
from tests.integration.lock_waits import wait_for_a_lock_wait
from tests.integration.pipeline import OTHER_SENDER, SENDER, Pipeline, ScriptedCarrier, make_pipeline

PATH = "/2010-04-01/Accounts/AC/IncomingPhoneNumbers/PN.json"


def release(pipe: Pipeline, number: str = SENDER) -> None:
    with pipe.db.write() as conn:
        row = number_store.find_by_number(conn, number)
        assert row is not None
        number_use.release(conn, pipe.account_sid, row["sid"], PATH, pipe.clock.now())


def test_releasing_a_number_fails_its_waiting_messages_with_21606(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    queued = pipe.send()
    accepted = pipe.send(from_=None, service=service)
    scheduled = pipe.send(from_=None, service=service, send_at=pipe.clock.now() + timedelta(hours=1))
    at_carrier = pipe.send()
    with pipe.db.write() as conn:
        transition(conn, at_carrier, MessageStatus.SENDING, at=pipe.clock.now())
    elsewhere = pipe.send(from_=OTHER_SENDER)
    assert pipe.message(accepted)["from_"] == SENDER and pipe.status(accepted) == "accepted"

    pipe.clock.advance(1)
    release(pipe)

    for sid in (queued, accepted):
        msg = pipe.message(sid)
        assert (msg["status"], msg["error_code"], msg["claimed_by"]) == ("failed", 21606, None), sid
        [entry] = pipe.events(sid, "number_released")
        assert (entry["status"], entry["error_code"]) == ("failed", 21606)
        assert entry["detail"] == {"sender": SENDER}
        [alert] = pipe.alerts(sid)
        assert alert["error_code"] == 21606 and SENDER in alert["alert_text"]
        assert pipe.callbacks(sid)[-1]["MessageStatus"] == "failed"
        assert pipe.callbacks(sid)[-1]["ErrorCode"] == "21606"
    # What the carrier has, and another number's queue, are not the release's; nor a scheduled
    # message whose pool chose the number: it gets its sender from the pool at its SendAt.
    assert pipe.status(at_carrier) == "sending" and pipe.events(at_carrier, "number_released") == []
    assert pipe.status(elsewhere) == "queued"
    assert pipe.status(scheduled) == "scheduled" and pipe.events(scheduled, "number_released") == []

    pipe.clock.advance(3600)
    pipe.dispatch()  # the other number's message (and the one left `sending` unclaimed, resent)
    assert pipe.status(elsewhere) == "sent"
    assert {pipe.status(sid) for sid in (queued, accepted, scheduled)} == {"failed"}
    assert all(pipe.parts(sid) == [] for sid in (queued, accepted, scheduled))  # never submitted
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, queued, now=pipe.clock.now())
        at_send_at = diagnose.diagnose_message(conn, pipe.account_sid, scheduled, now=pipe.clock.now())
    assert "sender_released" in report.causes()
    # The pool had nothing left at the SendAt: what the doctor says of a pool emptied since.
    assert pipe.message(scheduled)["error_code"] == 21704
    assert "no_pool_sender" in at_send_at.causes() and "sender_released" not in at_send_at.causes()


def test_a_release_leaves_another_accounts_messages_from_the_number_alone(pipe: Pipeline) -> None:
    """Only the releasing account's messages: a later owner's queue from the number is its own."""
    now = pipe.clock.now()
    ours = pipe.send(from_=OTHER_SENDER)
    release(pipe, OTHER_SENDER)
    with pipe.db.write() as conn:
        other = account_use.create_account(conn, friendly_name="next owner", now=now)
        number_use.provision(conn, account_sid=other["sid"], phone_number=OTHER_SENDER, now=now)
        theirs = prepare_message(conn, other["sid"], SendRequest(to="+14155557050", from_=OTHER_SENDER, body="x"), now)
        insert_messages(conn, [theirs])
    assert pipe.status(ours) == "failed"
    with pipe.db.write() as conn:
        row = number_store.find_by_number(conn, OTHER_SENDER)
        assert row is not None
        number_use.release(conn, other["sid"], row["sid"], PATH, now)
    assert pipe.status(str(theirs.message["sid"])) == "failed"
    assert len(pipe.events(ours, "number_released")) == 1  # not failed twice


def test_a_release_fails_a_long_queue_in_batches(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from pigeon.app import sender_exit

    monkeypatch.setattr(sender_exit, "BATCH", 3)
    sids = pipe.send_in_order(8)
    release(pipe)
    assert {pipe.status(s) for s in sids} == {"failed"}
    assert all(len(pipe.events(s, "number_released")) == 1 for s in sids)


@pytest.mark.postgres
def test_a_message_a_dispatcher_takes_meanwhile_is_left_to_it(pg: Database, clock: FrozenClock) -> None:
    """On PostgreSQL a dispatcher may move a waiting message to `sending` while the number is
    released: the release waits for its row, then leaves it alone (it is at the carrier)."""
    pipe = make_pipeline(pg, clock)
    try:
        taken, waiting = pipe.send(), pipe.send()
        errors: list[BaseException] = []
        with pg.engine.connect() as conn:
            dispatcher = conn.begin()
            transition(conn, taken, MessageStatus.SENDING, at=clock.now())

            def run() -> None:
                try:
                    release(pipe)
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            assert wait_for_a_lock_wait(pg, done=lambda: not thread.is_alive())
            dispatcher.commit()
        thread.join(10)
        assert not errors
        assert pipe.status(taken) == "sending" and pipe.events(taken, "number_released") == []
        assert pipe.status(waiting) == "failed"
    finally:
        pipe.spool.stop()


def _move(pipe: Pipeline, number: str = SENDER) -> None:
    """Move `number` to a new subaccount of the pipeline's account (IncomingPhoneNumbers update)."""
    with pipe.db.write() as conn:
        sub = account_use.create_subaccount(conn, pipe.account_sid, friendly_name="sub", now=pipe.clock.now())
        row = number_store.find_by_number(conn, number)
        assert row is not None
        number_use.update(conn, pipe.account_sid, row["sid"], PATH, {"AccountSid": sub["sid"]}, pipe.clock.now())


#: The two ways a number leaves its account, and the timeline entry each gives.
LEAVING = {"released": (release, "number_released"), "moved": (_move, "number_transferred")}


@pytest.mark.parametrize("how", list(LEAVING))
def test_messages_the_pool_chose_the_number_for_go_from_another_of_the_pool(pipe: Pipeline, how: str) -> None:
    """The pool chose the number, not the application: a scheduled message gets its sender from
    the pool at its SendAt, an accepted one another sender of the pool now; neither fails while
    the pool has one. A message that named the number as its From still fails (21606)."""
    leave, kind = LEAVING[how]
    service = pipe.add_service(SENDER, OTHER_SENDER)
    later = pipe.clock.now() + timedelta(hours=1)
    recipients = [f"+14155552{i:03d}" for i in range(40)]
    accepted = [pipe.send(to, from_=None, service=service) for to in recipients[:20]]
    scheduled = [pipe.send(to, from_=None, service=service, send_at=later) for to in recipients[20:]]
    accepted = [s for s in accepted if pipe.message(s)["from_"] == SENDER]
    scheduled = [s for s in scheduled if pipe.message(s)["from_"] == SENDER]
    assert accepted and scheduled  # the pool spreads its recipients over both numbers
    named = pipe.send(from_=SENDER, service=service)  # the application asked for the number
    hashes = {s: pipe.message(s)["content_hash"] for s in accepted}

    pipe.clock.advance(1)
    leave(pipe)

    for sid in accepted:
        msg = pipe.message(sid)
        assert (msg["status"], msg["from_"], msg["error_code"]) == ("accepted", OTHER_SENDER, None), sid
        assert msg["content_hash"] != hashes[sid]  # duplicates are found under the sender it goes from
        [entry] = pipe.events(sid, "sender_chosen")
        assert entry["detail"] == {
            "sender": OTHER_SENDER,
            "sender_was": SENDER,
            "messaging_service_sid": service,
            "reason": kind,
        }
        assert pipe.events(sid, kind) == [] and pipe.alerts(sid) == []
    for sid in scheduled:
        assert pipe.status(sid) == "scheduled" and pipe.events(sid, kind) == [], sid
    assert (pipe.status(named), pipe.message(named)["error_code"]) == ("failed", 21606)
    assert len(pipe.events(named, kind)) == 1

    pipe.clock.advance(3600)
    carrier = ScriptedCarrier("c1")
    while pipe.dispatch(route=[carrier]):
        pipe.clock.advance(1)
    assert {m.sender for m in carrier.submitted} == {OTHER_SENDER}
    for sid in [*accepted, *scheduled]:
        assert (pipe.status(sid), pipe.message(sid)["from_"]) == ("sent", OTHER_SENDER), sid
    with pipe.db.read() as conn:
        causes = {
            cause
            for sid in [*accepted, *scheduled]
            for cause in diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now()).causes()
        }
    assert "sender_released" not in causes


def test_a_long_queue_of_scheduled_pool_messages_does_not_hide_the_rest(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled messages the release leaves alone are not read at all: batches of them
    would otherwise fill every read, and the messages behind them would go on."""
    from pigeon.app import sender_exit

    monkeypatch.setattr(sender_exit, "BATCH", 3)
    service = pipe.add_service(SENDER)
    later = pipe.clock.now() + timedelta(hours=1)
    scheduled = [pipe.send(f"+14155552{i:03d}", from_=None, service=service, send_at=later) for i in range(7)]
    named = pipe.send_in_order(4)
    release(pipe)
    assert {pipe.status(s) for s in named} == {"failed"}
    assert {pipe.status(s) for s in scheduled} == {"scheduled"}
