"""A message whose From number left its account after the message was accepted fails with 21606
at the claim, never reaching a carrier; a number still the account's sends as before. Both
stores, and on PostgreSQL a claim that meets a release still in progress.

The send path checks the number outside the write that makes the message durable (group
commit), so a release or a move committing in between leaves a queued message that the
release's own sweep (`pigeon.app.sender_exit.fail_waiting`) never saw. The tests make that
state directly: the message is accepted, then the number's row is removed or moved by the
store alone, as that release or move would leave it.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Connection

from pigeon.app import accounts as account_use
from pigeon.app import diagnose, event_streams
from pigeon.app import numbers as number_use
from pigeon.app.busy_senders import RETRY
from pigeon.app.events import EVENT
from pigeon.app.send import SendRequest, prepare_message
from pigeon.store import numbers as number_store
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.testing import FrozenClock
from tests.integration.lock_waits import while_held
from tests.integration.pipeline import OTHER_SENDER, SENDER, Pipeline, ScriptedCarrier, make_pipeline

SHORT_CODE = "45678"
FAILED = "com.twilio.messaging.message.failed"


def _number_sid(pipe: Pipeline, number: str) -> str:
    with pipe.db.read() as conn:
        row = number_store.find_by_number(conn, number)
    assert row is not None
    return str(row["sid"])


def _remove(pipe: Pipeline, number: str) -> None:
    """The number's row gone, as a release that committed after the send's lookup leaves it
    (its sweep of the queue having run before the message was written)."""
    with pipe.db.write() as conn:
        number_store.delete_number(conn, _number_sid(pipe, number))


def subscribe_to_failures(pipe: Pipeline) -> None:
    """An Event Streams subscription of the pipeline's account to failed messages."""
    config = json.dumps({"destination": "https://sink.example.com/in", "method": "POST", "batch_events": False})
    with pipe.db.write() as conn:
        now = pipe.clock.now()
        sink = event_streams.create_sink(
            conn, pipe.account_sid, {"Description": "s", "SinkType": "webhook", "SinkConfiguration": config}, now
        )
        types = [json.dumps({"type": FAILED, "schema_version": 1})]
        event_streams.create_subscription(
            conn, pipe.account_sid, {"Description": "s", "SinkSid": sink["sid"]}, types, now
        )


def events_streamed(pipe: Pipeline, sid: str) -> list[str]:
    """The types of the Event Streams events queued for message `sid`."""
    with pipe.db.read() as conn:
        rows = [r for r in outbox.list_deliveries(conn, message_sid=sid) if r["kind"] == EVENT]
    return [json.loads(dict(r["params"])["cloudevent"])["type"] for r in rows]


def _assert_failed_at_the_claim(pipe: Pipeline, sid: str, sender: str) -> None:
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["claimed_by"], msg["price"]) == ("failed", 21606, None, None)
    assert pipe.parts(sid) == []  # never submitted
    [entry] = pipe.events(sid, "number_left_account")
    assert (entry["status"], entry["error_code"]) == ("failed", 21606)
    assert entry["detail"]["sender"] == sender
    assert "left the account after the message was accepted" in entry["detail"]["reason"]
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 21606 and sender in alert["alert_text"]
    last = pipe.callbacks(sid)[-1]
    assert (last["MessageStatus"], last["ErrorCode"]) == ("failed", "21606")


@pytest.mark.parametrize("sender", [SENDER, SHORT_CODE], ids=["long_code", "short_code"])
def test_a_number_released_after_the_send_fails_its_message_with_21606_and_no_submit(
    pipe: Pipeline, sender: str
) -> None:
    if sender == SHORT_CODE:
        with pipe.db.write() as conn:
            number_use.provision(
                conn, account_sid=pipe.account_sid, phone_number=SHORT_CODE, now=pipe.clock.now(), iso_country="US"
            )
    subscribe_to_failures(pipe)
    sid = pipe.send(from_=sender)
    _remove(pipe, sender)
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier]) == 0
    assert carrier.submitted == []
    _assert_failed_at_the_claim(pipe, sid, sender)
    assert pipe.timeline(sid) == [("created", "queued"), ("number_left_account", "failed")]
    assert events_streamed(pipe, sid) == [FAILED]
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now())
    assert "sender_released" in report.causes() and "carrier_failed" not in report.causes()


def test_a_number_still_the_accounts_sends_as_before(pipe: Pipeline) -> None:
    carrier = ScriptedCarrier("c1")
    sid = pipe.send()
    alphanumeric = pipe.send("+447700900123", from_="Pigeon")  # no number to own

    assert pipe.dispatch(route=[carrier]) == 2
    assert [m.sender for m in carrier.submitted] == [SENDER, "Pigeon"]
    assert pipe.status(sid) == pipe.status(alphanumeric) == "sent"
    assert pipe.alerts(sid) == []


def test_a_number_moved_to_another_account_fails_the_old_accounts_message_only(pipe: Pipeline) -> None:
    """One claim, both accounts' messages from the number: the check is the account's, not the
    number's."""
    now = pipe.clock.now()
    ours = pipe.send()
    with pipe.db.write() as conn:
        other = account_use.create_account(conn, friendly_name="new owner", now=now)
        number_store.update_number(conn, _number_sid(pipe, SENDER), now=now, account_sid=other["sid"])
        theirs = prepare_message(conn, other["sid"], SendRequest(to="+14155557050", from_=SENDER, body="x"), now)
        insert_messages(conn, [theirs])
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier]) == 1
    assert [m.recipient for m in carrier.submitted] == ["+14155557050"]
    assert pipe.status(str(theirs.message["sid"])) == "sent"
    _assert_failed_at_the_claim(pipe, ours, SENDER)
    # The other account's SID is not this account's to see.
    assert other["sid"] not in json.dumps([pipe.events(ours), pipe.alerts(ours)], default=str)


def test_a_messaging_service_message_from_a_number_released_since_fails_before_it_is_queued(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    sid = pipe.send(from_=None, service=service)
    assert pipe.message(sid)["from_"] == SENDER
    _remove(pipe, SENDER)

    assert pipe.dispatch(route=[ScriptedCarrier("c1")]) == 0
    _assert_failed_at_the_claim(pipe, sid, SENDER)
    assert pipe.timeline(sid) == [("created", "accepted"), ("number_left_account", "failed")]


@pytest.mark.postgres
def test_a_claim_that_meets_a_release_in_progress_leaves_the_message_for_a_later_round(
    pg: Database, clock: FrozenClock
) -> None:
    """A release still open holds the number's row: the claim neither waits for it (the release
    may be waiting for the claim's messages) nor trusts the row as it was; the message goes back
    to the queue and the next round finds the number gone."""
    pipe = make_pipeline(pg, clock)
    try:
        sid = pipe.send()
        number = _number_sid(pipe, SENDER)
        carrier = ScriptedCarrier("c1")

        def releasing(conn: Connection) -> None:
            number_store.lock_number(conn, number)
            number_store.delete_number(conn, number)

        assert while_held(pg, releasing, lambda: pipe.dispatch(route=[carrier])) == 0
        msg = pipe.message(sid)
        assert (msg["status"], msg["attempts"], carrier.submitted) == ("queued", 0, [])
        assert pipe.events(sid, "number_left_account") == []

        clock.advance(RETRY.total_seconds())
        assert pipe.dispatch(route=[carrier]) == 0  # not yet: see the test below
        clock.advance(0.1)
        assert pipe.dispatch(route=[carrier]) == 0
        assert carrier.submitted == []
        _assert_failed_at_the_claim(pipe, sid, SENDER)
    finally:
        pipe.spool.stop()


@pytest.mark.postgres
def test_messages_put_back_for_a_number_being_changed_do_not_hold_up_the_other_senders(
    pg: Database, clock: FrozenClock
) -> None:
    """A change of a number left open (its API process stopped inside it, or cut off from the
    server) holds the number's row until the server ends its session. Put back due at once, the
    number's messages came back at the head of the queue at every claim: with as many of them
    due as a claim takes, no claim ever reached another sender's messages."""
    pipe = make_pipeline(pg, clock)
    carrier = ScriptedCarrier("c1")
    try:
        first, second = pipe.send_in_order(2)
        other = pipe.send(from_=OTHER_SENDER)
        with pg.engine.connect() as conn:
            conn.begin()
            number_store.lock_number(conn, _number_sid(pipe, SENDER))  # a release or move, open
            assert pipe.dispatch(route=[carrier], batch=2) == 0  # SENDER's two, put back
            clock.advance(0.1)  # the next round
            assert pipe.dispatch(route=[carrier], batch=2) == 1
            assert [m.message_sid for m in carrier.submitted] == [other]
            conn.rollback()  # it ends without a change
        clock.advance(RETRY.total_seconds())
        assert pipe.dispatch(route=[carrier]) == 1
        clock.advance(1)  # SENDER's pace: one a second
        assert pipe.dispatch(route=[carrier]) == 1
        assert [m.message_sid for m in carrier.submitted] == [other, first, second]
    finally:
        pipe.spool.stop()
