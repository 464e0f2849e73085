"""A recipient who texts STOP after a message was accepted does not get it: the dispatcher fails
it at the claim with 21610 (as Twilio does, uncharged), with the create's scope rules, while the
STOP's own confirmation goes out. Both stores.

Before the claim checked, only a create was refused: a queued message waiting behind its
sender's pace, a Messaging Service's accepted one and a scheduled one went out after the STOP.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import diagnose
from pigeon.app.dispatch import DispatchSettings, claim, mark_sending
from pigeon.app.inbound import receive
from pigeon.app.optouts import list_for_account
from pigeon.ports import InboundSms
from pigeon.store.optouts import record_opt_out
from pigeon.store.tables import messages
from tests.integration.pipeline import OTHER_SENDER, SENDER, TO, Pipeline, ScriptedCarrier
from tests.integration.test_dispatch_sender_left import FAILED, events_streamed, subscribe_to_failures


def _text(pipe: Pipeline, body: str, *, to: str = SENDER, sender: str = TO) -> None:
    """The recipient texts `body` to `to` (the real inbound path: keywords, opt-outs, replies)."""
    pipe.clock.advance(1)
    with pipe.db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=sender, recipient=to, body=body),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )


def _keyword_replies(pipe: Pipeline) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        rows = conn.execute(sa.select(messages).where(messages.c.keyword_reply.is_(True))).mappings()
        return [dict(r) for r in rows]


def _drain(pipe: Pipeline, carrier: ScriptedCarrier) -> int:
    """Rounds a second apart (a long code sends one segment a second) until none submits."""
    submitted = 0
    while sent := pipe.dispatch(route=[carrier]):
        submitted += sent
        pipe.clock.advance(1)
    return submitted


def _assert_failed_as_opted_out(pipe: Pipeline, sid: str, *, opted_out_of: str, scope: str) -> dict[str, Any]:
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["claimed_by"], msg["price"]) == ("failed", 21610, None, None)
    assert pipe.parts(sid) == []  # never submitted
    [entry] = pipe.events(sid, "opted_out")
    assert (entry["status"], entry["error_code"]) == ("failed", 21610)
    detail = entry["detail"]
    assert (detail["opted_out_of"], detail["scope"], detail["keyword"]) == (opted_out_of, scope, "STOP")
    assert detail["inbound_message_sid"].startswith("SM") and detail["opted_out_at"]
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 21610 and "opted out" in alert["alert_text"] and "STOP" in alert["alert_text"]
    last = pipe.callbacks(sid)[-1]
    assert (last["MessageStatus"], last["ErrorCode"]) == ("failed", "21610")
    return dict(entry)


def test_a_queued_message_to_a_recipient_who_texts_stop_fails_and_the_confirmation_goes_out(pipe: Pipeline) -> None:
    subscribe_to_failures(pipe)
    waiting = pipe.send()
    _text(pipe, "STOP")
    [confirmation] = _keyword_replies(pipe)
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier]) == 1
    assert [(m.message_sid, m.recipient) for m in carrier.submitted] == [(confirmation["sid"], TO)]
    assert pipe.status(confirmation["sid"]) == "sent"
    _assert_failed_as_opted_out(pipe, waiting, opted_out_of=SENDER, scope="number")
    assert pipe.timeline(waiting) == [("created", "queued"), ("opted_out", "failed")]
    assert events_streamed(pipe, waiting) == [FAILED]
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, waiting, now=pipe.clock.now())
    [finding] = [f for f in report.findings if f.cause == "opted_out_while_waiting"]
    assert "STOP" in finding.summary and "(21610)" in finding.summary and "carrier_failed" not in report.causes()
    assert any("START" in a for a in finding.advice)


def test_a_scheduled_message_of_a_service_fails_at_its_send_at_after_a_stop_to_the_pool(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    send_at = pipe.clock.now() + timedelta(minutes=20)
    sid = pipe.send(from_=None, service=service, send_at=send_at)
    _text(pipe, "STOP")  # to the pool's number: service-wide
    assert [(o["sender"], o["scope"]) for o in _opt_outs(pipe)] == [(service, "service")]
    carrier = ScriptedCarrier("c1")
    assert pipe.dispatch(route=[carrier]) == 1  # the confirmation only
    assert pipe.status(sid) == "scheduled"

    pipe.clock.advance(20 * 60)
    assert pipe.dispatch(route=[carrier]) == 0
    assert len(carrier.submitted) == 1
    _assert_failed_as_opted_out(pipe, sid, opted_out_of=service, scope="service")
    assert pipe.timeline(sid) == [("created", "scheduled"), ("opted_out", "failed")]


def test_a_messaging_service_message_still_accepted_fails_before_it_is_queued(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    sid = pipe.send(from_=None, service=service)
    assert pipe.status(sid) == "accepted"
    sender = pipe.message(sid)["from_"]
    _text(pipe, "STOP", to=OTHER_SENDER if sender == SENDER else SENDER)  # another number of the pool

    pipe.dispatch(route=[ScriptedCarrier("c1")])
    _assert_failed_as_opted_out(pipe, sid, opted_out_of=service, scope="service")
    assert pipe.timeline(sid) == [("created", "accepted"), ("opted_out", "failed")]


def test_a_stop_to_a_number_s_service_blocks_a_message_from_the_number_sent_without_the_service(
    pipe: Pipeline,
) -> None:
    """The create's rule: from a number, the opt-outs of the service the number is in count,
    however the message names its sender."""
    sid = pipe.send(from_=SENDER)  # no MessagingServiceSid
    service = pipe.add_service(SENDER, OTHER_SENDER)
    _text(pipe, "STOP", to=OTHER_SENDER)

    pipe.dispatch(route=[ScriptedCarrier("c1")])
    _assert_failed_as_opted_out(pipe, sid, opted_out_of=service, scope="service")


def test_an_opt_out_of_one_number_leaves_another_number_and_other_recipients_alone(pipe: Pipeline) -> None:
    other_number = pipe.send(from_=OTHER_SENDER)
    other_recipient = pipe.send("+14155557001")
    blocked = pipe.send()
    _text(pipe, "STOP")  # to SENDER, not in a service: that pair only
    carrier = ScriptedCarrier("c1")

    assert _drain(pipe, carrier) == 3  # the two and the confirmation
    assert pipe.status(other_number) == pipe.status(other_recipient) == "sent"
    assert pipe.alerts(other_number) == pipe.alerts(other_recipient) == []
    _assert_failed_as_opted_out(pipe, blocked, opted_out_of=SENDER, scope="number")


def test_after_start_the_waiting_message_goes_out(pipe: Pipeline) -> None:
    sid = pipe.send()
    _text(pipe, "STOP")
    _text(pipe, "START")
    carrier = ScriptedCarrier("c1")

    assert _drain(pipe, carrier) == 3  # the message and both confirmations
    assert pipe.status(sid) == "sent" and pipe.events(sid, "opted_out") == []


def test_a_message_left_sending_by_a_dead_dispatcher_is_not_resent_after_a_stop(pipe: Pipeline) -> None:
    sid = pipe.send()
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        jobs = claim(conn, now=pipe.clock.now(), worker_id="dead-dispatcher", settings=settings)
    with pipe.db.write() as conn:
        assert mark_sending(conn, jobs, now=pipe.clock.now())  # and dies
    _text(pipe, "STOP")
    pipe.clock.advance(settings.lease.total_seconds() + 1)
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier]) == 1  # the confirmation only
    assert [m.message_sid for m in carrier.submitted] != [sid]
    _assert_failed_as_opted_out(pipe, sid, opted_out_of=SENDER, scope="number")
    assert pipe.timeline(sid) == [("created", "queued"), ("status", "sending"), ("opted_out", "failed")]


def test_an_imported_opt_out_blocks_a_waiting_message_too(pipe: Pipeline) -> None:
    sid = pipe.send()
    with pipe.db.write() as conn:
        record_opt_out(
            conn,
            account_sid=pipe.account_sid,
            sender=SENDER,
            recipient=TO,
            scope="number",
            keyword="STOP",
            inbound_message_sid=None,
            now=pipe.clock.now() - timedelta(days=30),
        )

    assert pipe.dispatch(route=[ScriptedCarrier("c1")]) == 0
    [entry] = pipe.events(sid, "opted_out")
    assert entry["detail"]["inbound_message_sid"] is None and pipe.status(sid) == "failed"


@pytest.mark.parametrize("replies_only", [False, True], ids=["batch", "keyword_replies_only"])
def test_the_check_is_one_read_per_claim_and_none_for_keyword_replies_alone(pipe: Pipeline, replies_only: bool) -> None:
    if not replies_only:
        for i in range(5):
            pipe.send(f"+1415555700{i}", from_=SENDER if i % 2 else OTHER_SENDER)
    _text(pipe, "HELP")  # its answer is a keyword reply
    reads: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM opt_outs" in statement:
            reads.append((statement, parameters))

    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        pipe.dispatch(route=[ScriptedCarrier("c1")])
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)
    assert len(reads) == (0 if replies_only else 1)
    if reads and pipe.db.is_sqlite:  # each branch is read on the opt-outs' key, never scanned
        [(statement, parameters)] = reads
        with pipe.db.read() as conn:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(parameters))]
        assert not any(step.startswith(("SCAN opt_outs", "SCAN phone_numbers")) for step in plan), plan


def _opt_outs(pipe: Pipeline) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        return list_for_account(conn, pipe.account_sid)
