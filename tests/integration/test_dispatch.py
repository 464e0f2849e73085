"""The dispatcher on both stores: lifecycle, callbacks, pacing across dispatchers, validity,
retries, refusals, failover, reclaiming a dead dispatcher's messages, Messaging Services,
the ten-hour queue and prices.

Each test drives the real use cases (claim, mark_sending, submit, record; DispatchRound) with
a FrozenClock, the real built-in network spooling receipts into the store, or a scripted
Carrier. Rounds use no look-ahead unless a test is about it, so nothing waits for real time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app.dispatch import DispatchSettings, Job, claim, mark_sending, record, submit
from pigeon.app.dispatch_jobs import Outcome
from pigeon.app.messages import cancel, delete
from pigeon.app.placement import HandOver
from pigeon.bootstrap import process_name
from pigeon.domain.diagnosis import count_submits, diagnose_message
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.domain.errors import (
    ApiError,
    CarrierOutcomeUnknown,
    CarrierPermanentError,
    CarrierRetryableError,
    CarrierUnavailable,
)
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.pricing import PriceTable
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.segments import SubmitProgress
from pigeon.ports import Continuation
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as dispatch_store
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from pigeon.workers.dispatcher import DispatcherWorker
from tests.integration.lock_waits import wait_for_a_lock_wait
from tests.integration.pipeline import CALLBACK, OTHER_SENDER, SENDER, TO, Pipeline, ScriptedCarrier
from tests.integration.plans import postgresql_plans

LEASE = DispatchSettings().lease


def _claim(pipe: Pipeline, worker_id: str, **kw: Any) -> list[Job]:
    settings = DispatchSettings(**kw)
    with pipe.db.write() as conn:
        return claim(conn, now=pipe.clock.now(), worker_id=worker_id, settings=settings)


# -- the lifecycle --------------------------------------------------------------------------------


def test_queued_sending_sent_delivered_with_every_step_in_the_timeline(pipe: Pipeline) -> None:
    sid = pipe.send()
    assert pipe.status(sid) == "queued"
    assert pipe.callbacks(sid) == []  # no callback for the status a message is created with

    assert pipe.dispatch() == 1
    sent = pipe.message(sid)
    assert sent["status"] == "sent"
    assert sent["carrier"] == "simulator"
    assert sent["date_sent"] == pipe.clock.now()
    assert sent["attempts"] == 1
    assert sent["claimed_by"] is None and sent["claimed_until"] is None
    assert len(pipe.parts(sid)) == 1

    assert pipe.receipts(advance=0.1) == 0  # the network answers after about 0.3 s
    assert pipe.status(sid) == "sent"
    assert pipe.receipts(advance=0.3) == 1
    assert pipe.status(sid) == "delivered"

    assert pipe.timeline(sid) == [
        ("created", "queued"),
        ("status", "sending"),
        ("status", "sent"),
        ("status", "delivered"),
        ("receipt", "delivered"),
    ]
    sent_event = pipe.events(sid, "status")[1]
    assert sent_event["detail"]["carrier"] == "simulator"
    assert sent_event["detail"]["carrier_ids"] == [pipe.parts(sid)[0]["carrier_message_id"]]
    receipt = pipe.events(sid, "receipt")[0]["detail"]
    assert receipt["stat"] == "DELIVRD" and receipt["applied"] is True and receipt["duplicate"] is False
    assert receipt["raw"].startswith(f"id:{receipt['carrier_id']} ")


def test_a_worker_on_a_host_with_the_longest_name_claims_and_sends(pipe: Pipeline) -> None:
    # "host:pid" could pass the 64 characters claimed_by holds, and then every claim failed on
    # PostgreSQL ("value too long"); process_name keeps it within them.
    sid = pipe.send()
    assert pipe.dispatch(worker_id=process_name("h" * 64, 4194304)) == 1
    assert pipe.status(sid) == "sent"


def test_callbacks_follow_every_change_after_creation(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch()
    pipe.receipts(advance=1)
    callbacks = pipe.callbacks(sid)
    assert [c["MessageStatus"] for c in callbacks] == ["sending", "sent", "delivered"]
    assert pipe.callback_urls(sid) == [CALLBACK] * 3
    for c in callbacks:
        assert c["MessageSid"] == c["SmsSid"] == sid
        assert c["SmsStatus"] == c["MessageStatus"]
        assert (c["AccountSid"], c["From"], c["To"], c["ApiVersion"]) == (pipe.account_sid, SENDER, TO, "2010-04-01")
        assert "ErrorCode" not in c
    assert "RawDlrDoneDate" in callbacks[2] and len(callbacks[2]["RawDlrDoneDate"]) == 10


def test_a_message_without_a_status_callback_enqueues_nothing(pipe: Pipeline) -> None:
    sid = pipe.send(callback=None)
    pipe.dispatch()
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"
    assert pipe.callbacks(sid) == []


def test_nothing_is_due_twice(pipe: Pipeline) -> None:
    sid = pipe.send()
    assert pipe.dispatch() == 1
    assert pipe.dispatch() == 0
    assert pipe.dispatch("dispatcher-2") == 0
    assert pipe.message(sid)["attempts"] == 1


# -- pacing ---------------------------------------------------------------------------------------


def test_two_messages_from_one_long_code_get_slots_one_second_apart(pipe: Pipeline) -> None:
    first, second = pipe.send_in_order(2)
    jobs = _claim(pipe, "dispatcher-1", lookahead=timedelta(seconds=5))
    now = pipe.clock.now()
    assert [(j.message["sid"], j.slot - now) for j in jobs] == [(first, timedelta(0)), (second, timedelta(seconds=1))]
    assert pipe.next_free() == now + timedelta(seconds=2)


def test_a_paced_message_goes_out_one_second_later(pipe: Pipeline) -> None:
    first, second = pipe.send_in_order(2)
    other = pipe.send(from_=OTHER_SENDER)  # another sender is not held up
    start = pipe.clock.now()
    assert pipe.dispatch() == 2
    assert (pipe.status(first), pipe.status(second), pipe.status(other)) == ("sent", "queued", "sent")
    waiting = pipe.message(second)
    assert waiting["next_attempt_at"] == start + timedelta(seconds=1)
    assert waiting["claimed_by"] is None  # back in the queue with its slot, not held by a claim
    assert pipe.dispatch("dispatcher-2") == 0  # not before its slot, whoever asks
    pipe.clock.advance(1)
    assert pipe.dispatch("dispatcher-2") == 1
    assert pipe.message(second)["date_sent"] - pipe.message(first)["date_sent"] == timedelta(seconds=1)


def test_multi_segment_messages_occupy_the_sender_per_segment(pipe: Pipeline) -> None:
    long_one = pipe.send(body="x" * 200)  # two segments
    pipe.clock.advance(0.001)
    after = pipe.send()
    jobs = _claim(pipe, "dispatcher-1", lookahead=timedelta(seconds=5))
    assert pipe.message(long_one)["num_segments"] == 2
    assert [j.slot - pipe.clock.now() for j in jobs] == [timedelta(0), timedelta(seconds=2)]
    assert [j.message["sid"] for j in jobs] == [long_one, after]


def test_another_dispatcher_never_gets_a_claimed_message_and_respects_its_slots(pipe: Pipeline) -> None:
    held = pipe.send_in_order(3)
    jobs_a = _claim(pipe, "dispatcher-A", lookahead=timedelta(seconds=10))
    assert [j.message["sid"] for j in jobs_a] == held
    later = pipe.send()
    jobs_b = _claim(pipe, "dispatcher-B", lookahead=timedelta(seconds=10))
    assert [j.message["sid"] for j in jobs_b] == [later]
    # B's message takes the sender's next free slot, after the three A reserved.
    assert jobs_b[0].slot == pipe.clock.now() + timedelta(seconds=3)
    assert {pipe.message(s)["claimed_by"] for s in held} == {"dispatcher-A"}
    assert pipe.message(later)["claimed_by"] == "dispatcher-B"


def test_a_second_round_respects_slots_reserved_by_the_first(pipe: Pipeline) -> None:
    sids = pipe.send_in_order(3)
    start = pipe.clock.now()
    assert pipe.dispatch("dispatcher-A") == 1  # the others are released with their slots
    pipe.clock.advance(1)
    assert pipe.dispatch("dispatcher-B") == 1
    pipe.clock.advance(1)
    assert pipe.dispatch("dispatcher-A") == 1
    sent_at = [pipe.message(s)["date_sent"] - start for s in sids]
    assert sent_at == [timedelta(seconds=n) for n in range(3)]


def test_concurrent_dispatchers_split_the_queue_without_overlap(db: Database, pipe: Pipeline) -> None:
    # Both senders have sent before (their sender_pacing rows exist: see the new-sender test below).
    pipe.send(from_=SENDER)
    pipe.send(from_=OTHER_SENDER)
    assert pipe.dispatch() == 2
    numbers = [f"+1415555{3000 + i:04d}" for i in range(40)]
    sids = {pipe.send(to=n, from_=SENDER if i % 2 else OTHER_SENDER) for i, n in enumerate(numbers)}
    pipe.clock.advance(100)  # every reserved slot is due at once
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        mine: list[str] = []
        for _ in range(20):
            jobs = _claim(pipe, name, batch=3, lookahead=timedelta(seconds=1000))
            mine += [j.message["sid"] for j in jobs]
        claimed[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    everything = [sid for mine in claimed.values() for sid in mine]
    assert sorted(everything) == sorted(sids)  # each message claimed exactly once


def _wait_for_a_lock_wait(db: Database) -> None:
    """Until another session waits on a lock (PostgreSQL); on SQLite the second writer waits on
    BEGIN IMMEDIATE, which is correct however long it waits, so a short pause is enough."""
    if db.is_sqlite:
        time.sleep(0.2)
        return
    wait_for_a_lock_wait(db, timeout=20)


def test_two_dispatchers_share_a_new_senders_rate(
    request: pytest.FixtureRequest, db: Database, pipe: Pipeline, clock: FrozenClock
) -> None:
    first = pipe.send()
    second = pipe.send()
    slots: dict[str, datetime] = {}
    a_claimed, a_release = threading.Event(), threading.Event()

    def dispatcher_a() -> None:
        with db.write() as conn:
            jobs = claim(
                conn,
                now=clock.now(),
                worker_id="A",
                settings=DispatchSettings(batch=1, lookahead=timedelta(seconds=10)),
            )
            slots.update({j.message["sid"]: j.slot for j in jobs})
            a_claimed.set()
            a_release.wait(timeout=20)

    def dispatcher_b() -> None:
        with db.write() as conn:
            jobs = claim(
                conn,
                now=clock.now(),
                worker_id="B",
                settings=DispatchSettings(batch=1, lookahead=timedelta(seconds=10)),
            )
            slots.update({j.message["sid"]: j.slot for j in jobs})

    ta = threading.Thread(target=dispatcher_a)
    ta.start()
    assert a_claimed.wait(timeout=20)
    tb = threading.Thread(target=dispatcher_b)
    tb.start()
    # A commits only once B is inside its claim, waiting for the sender_pacing row A holds.
    _wait_for_a_lock_wait(db)
    a_release.set()
    ta.join(timeout=20)
    tb.join(timeout=20)
    assert set(slots) == {first, second}
    assert abs((slots[second] - slots[first]).total_seconds()) >= 1.0


def test_dispatchers_claiming_new_senders_in_opposite_orders_do_not_deadlock(
    request: pytest.FixtureRequest, db: Database, pipe: Pipeline, clock: FrozenClock
) -> None:
    """A claims a message from S1 then one from S2, B one from S2 then one from S1, both senders new.
    Interleaved statement by statement: A records S1's slot, B records S2's, then each records the other.
    (On PostgreSQL a new sender's row is now made and committed on its own, before any is locked.)"""
    s1, s2 = SENDER, OTHER_SENDER
    pipe.send_in_order(1, from_=s1)
    pipe.send_in_order(1, from_=s2)
    pipe.send_in_order(1, from_=s2, to="+14155553001")
    pipe.send_in_order(1, from_=s1, to="+14155553002")
    a_wrote_s1, b_wrote_s2 = threading.Event(), threading.Event()
    names: dict[int, str] = {}
    errors: list[BaseException] = []
    claimed: list[str] = []

    def after_execute(conn: object, cursor: object, statement: str, params: object, *rest: object) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO SENDER_PACING"):
            return
        who, sender = names.get(threading.get_ident()), str(params)
        if who == "A" and s1 in sender:
            a_wrote_s1.set()
            b_wrote_s2.wait(timeout=1 if db.is_sqlite else 3)
        if who == "B" and s2 in sender:
            b_wrote_s2.set()

    def dispatcher(name: str) -> None:
        names[threading.get_ident()] = name
        try:
            jobs = _claim(pipe, name, batch=2, lookahead=timedelta(seconds=10))
            claimed.extend(j.message["sid"] for j in jobs)
        except Exception as exc:
            errors.append(exc)

    sa.event.listen(db.engine, "after_cursor_execute", after_execute)
    try:
        ta = threading.Thread(target=dispatcher, args=("A",))
        ta.start()
        assert a_wrote_s1.wait(timeout=10)
        tb = threading.Thread(target=dispatcher, args=("B",))
        tb.start()
        ta.join(timeout=30)
        tb.join(timeout=30)
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", after_execute)
    assert errors == []
    assert len(claimed) == 4


# -- validity period --------------------------------------------------------------------------------


def test_a_message_older_than_its_validity_period_fails_with_30036(pipe: Pipeline) -> None:
    sid = pipe.send(validity=5)
    pipe.clock.advance(6)
    assert pipe.dispatch() == 0
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["price"]) == ("failed", 30036, None)
    assert msg["claimed_by"] is None
    [expired] = pipe.events(sid, "expired")
    assert expired["status"] == "failed" and expired["error_code"] == 30036
    assert expired["detail"] == {"validity_period": 5, "waited_seconds": 6}
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 30036 and "validity period" in alert["alert_text"]
    [callback] = pipe.callbacks(sid)
    assert (callback["MessageStatus"], callback["ErrorCode"]) == ("failed", "30036")


def test_a_message_within_its_validity_period_is_sent(pipe: Pipeline) -> None:
    sid = pipe.send(validity=5)
    pipe.clock.advance(5)
    assert pipe.dispatch() == 1
    assert pipe.status(sid) == "sent"


def test_a_message_sent_without_a_validity_period_waits_at_most_twilios_default(pipe: Pipeline) -> None:
    kept, late = pipe.send(), pipe.send(from_=OTHER_SENDER)
    pipe.clock.advance(36_000)
    assert pipe.dispatch(batch=1) == 1 and pipe.status(kept) == "sent"
    pipe.clock.advance(1)
    assert pipe.dispatch() == 0
    assert (pipe.status(late), pipe.message(late)["error_code"]) == ("failed", 30036)
    [expired] = pipe.events(late, "expired")
    assert expired["detail"] == {"validity_period": 36_000, "waited_seconds": 36_001}


def test_a_message_paced_past_its_validity_period_fails(pipe: Pipeline) -> None:
    sids = pipe.send_in_order(4, validity=3)
    for _ in range(4):
        pipe.dispatch()
        pipe.clock.advance(1)
    assert [pipe.status(s) for s in sids] == ["sent", "sent", "sent", "failed"]
    assert pipe.message(sids[3])["error_code"] == 30036


# -- refusals and retries ---------------------------------------------------------------------------


def test_a_retryable_refusal_requeues_with_backoff_then_sends(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550109")  # the network throttles twice, then accepts
    start = pipe.clock.now()
    assert pipe.dispatch() == 1
    msg = pipe.message(sid)
    assert (msg["status"], msg["attempts"]) == ("queued", 1)
    assert msg["next_attempt_at"] > start
    assert msg["claimed_by"] is None and msg["error_code"] is None
    [retry] = pipe.events(sid, "retry")
    assert retry["status"] == "queued"
    assert retry["detail"]["carrier_code"] == "ESME_RTHROTTLED"
    assert retry["detail"]["refused_by"][0]["retryable"] is True

    assert pipe.dispatch() == 0  # not before its backoff
    for _ in range(10):  # each retry waits for its backoff, then for the sender's next free slot
        if pipe.status(sid) != "queued":
            break
        pipe.clock.current = pipe.message(sid)["next_attempt_at"]
        pipe.dispatch()
    msg = pipe.message(sid)
    assert (msg["status"], msg["attempts"]) == ("sent", 3)
    assert len(pipe.events(sid, "retry")) == 2
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"
    # `sending` once, for the first attempt: the retries move the message to sending again,
    # and a receiver told so with new idempotency tokens could not tell them from news.
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


def test_retries_stop_at_the_policys_budget(pipe: Pipeline) -> None:
    carrier = ScriptedCarrier("busy", default=CarrierRetryableError("busy", carrier_code="ESME_RTHROTTLED"))
    sid = pipe.send()
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=1, jitter=0)
    for _ in range(3):
        pipe.dispatch(route=[carrier], retry=policy)
        pipe.clock.advance(1)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["attempts"]) == ("failed", 30008, 3)
    assert len(carrier.submitted) == 3
    assert [a.attempt for a in carrier.submitted] == [1, 2, 3]
    [alert] = pipe.alerts(sid)
    assert "refused 3 times" in alert["alert_text"]
    assert pipe.dispatch(route=[carrier], retry=policy) == 0


def test_a_permanent_refusal_fails_with_the_code_and_the_carriers_answer(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550105")
    assert pipe.dispatch() == 1
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["price"], msg["attempts"]) == ("failed", 30008, None, 1)
    failed = pipe.events(sid)[-1]
    assert (failed["kind"], failed["status"], failed["error_code"]) == ("status", "failed", 30008)
    assert failed["detail"]["carrier_code"] == "ESME_RSYSERR"
    assert failed["detail"]["refused_by"] == [
        {
            "carrier": "simulator",
            "carrier_code": "ESME_RSYSERR",
            "error": "the simulated carrier could not process the message",
            "retryable": False,
        }
    ]
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 30008 and "ESME_RSYSERR" in alert["alert_text"]
    assert pipe.callback_statuses(sid) == ["sending", "failed"]
    assert pipe.callbacks(sid)[-1]["ErrorCode"] == "30008"
    assert pipe.dispatch() == 0


def test_a_permanent_refusal_keeps_the_carriers_code(pipe: Pipeline) -> None:
    refusing = ScriptedCarrier("strict", CarrierPermanentError("spam", carrier_code="0x00000045", error_code=30007))
    sid = pipe.send()
    pipe.dispatch(route=[refusing])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30007)
    assert pipe.events(sid)[-1]["detail"]["carrier_code"] == "0x00000045"


# -- failover -----------------------------------------------------------------------------------------


def test_failover_to_the_next_carrier_after_a_retryable_refusal(pipe: Pipeline) -> None:
    first = ScriptedCarrier("first", CarrierRetryableError("no bind", carrier_code="ESME_RBINDFAIL"))
    second = ScriptedCarrier("second")
    sid = pipe.send()
    assert pipe.dispatch(route=[first, second]) == 1
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"], msg["attempts"]) == ("sent", "second", 1)
    [failover] = pipe.events(sid, "failover")
    assert failover["detail"]["refused_by"] == [
        {"carrier": "first", "carrier_code": "ESME_RBINDFAIL", "error": "no bind", "retryable": True}
    ]
    assert pipe.events(sid)[-1]["detail"]["carrier"] == "second"
    assert [p["carrier"] for p in pipe.parts(sid)] == ["second"]
    assert len(first.submitted) == len(second.submitted) == 1


def test_a_crashing_connector_fails_over_instead_of_losing_the_message(pipe: Pipeline) -> None:
    broken = ScriptedCarrier("broken", RuntimeError("connector bug"))
    sid = pipe.send()
    pipe.dispatch(route=[broken, pipe.network])
    assert (pipe.status(sid), pipe.message(sid)["carrier"]) == ("sent", "simulator")
    assert pipe.events(sid, "failover")[0]["detail"]["refused_by"][0]["carrier_code"] == "INTERNAL"


def test_no_failover_after_a_refusal_about_the_handset(pipe: Pipeline) -> None:
    unknown = CarrierPermanentError("unknown subscriber", carrier_code="ESME_RINVDSTADR", error_code=30005)
    first = ScriptedCarrier("first", unknown)
    second = ScriptedCarrier("second")
    sid = pipe.send()
    pipe.dispatch(route=[first, second])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30005)
    assert second.submitted == []


def test_a_carrier_that_never_answers_fails_the_message_with_30410_once_retries_run_out(pipe: Pipeline) -> None:
    silent = ScriptedCarrier("silent", default=CarrierOutcomeUnknown("no answer", carrier_code="smpp:response_timeout"))
    sid = pipe.send()
    policy = RetryPolicy(max_attempts=2, base_delay=1, max_delay=1, jitter=0)
    for _ in range(2):
        pipe.dispatch(route=[silent], retry=policy)
        pipe.clock.advance(1)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 30410)
    assert len(silent.submitted) == 2
    assert pipe.callbacks(sid)[-1]["ErrorCode"] == "30410"


def test_every_carrier_refusing_retryably_requeues(pipe: Pipeline) -> None:
    a = ScriptedCarrier("a", CarrierRetryableError("busy", carrier_code="T1"))
    b = ScriptedCarrier("b", CarrierRetryableError("busy", carrier_code="T2"))
    sid = pipe.send()
    pipe.dispatch(route=[a, b])
    assert pipe.status(sid) == "queued"
    [failover] = pipe.events(sid, "failover")
    assert [r["carrier"] for r in failover["detail"]["refused_by"]] == ["a", "b"]


def test_a_destination_without_a_route_fails_with_no_route(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch(route=[])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30008)
    assert pipe.events(sid)[-1]["detail"]["carrier_code"] == "NO_ROUTE"


# -- holds: what a carrier may already have of a message --------------------------------------------


def _partly_refused(accepted: tuple[str, ...], *, parts: int = 3, first: int = 1) -> CarrierRetryableError:
    err = CarrierRetryableError("later part refused", carrier_code="ESME_RSUBMITFAIL")
    err.progress = SubmitProgress(
        parts=parts, reference=42, first_part=first, accepted_ids=accepted, stopped_at=first + len(accepted)
    )
    return err


LONG = "x" * 400  # three parts


def test_a_held_message_stays_on_its_carrier_through_plain_refusals_and_then_continues(pipe: Pipeline) -> None:
    unbound = CarrierUnavailable("not bound", carrier_code="smpp:not_bound")
    held = ScriptedCarrier("held", _partly_refused(("h-1",)), unbound)
    other = ScriptedCarrier("other")
    sid = pipe.send(body=LONG)
    policy = RetryPolicy(max_attempts=5, base_delay=1, max_delay=1, jitter=0)
    for _ in range(3):
        pipe.dispatch(route=[held, other], retry=policy)
        pipe.clock.advance(5)
    assert other.submitted == []  # never another carrier: it would resend part 1
    assert [m.continuation for m in held.submitted] == [None, *[Continuation(42, 3, 2)] * 2]
    assert pipe.status(sid) == "sent" and pipe.message(sid)["carrier"] == "held"
    parts = pipe.parts(sid)
    assert [(p["part_index"], p["part_count"]) for p in parts] == [(0, 3), (1, 3), (2, 3)]
    assert [p["carrier_message_id"] for p in parts] == ["h-1", "held-3-1", "held-3-2"]
    sent = pipe.events(sid, "status")[-1]
    assert sent["detail"]["carrier_ids"] == ["h-1", "held-3-1", "held-3-2"]
    assert pipe.events(sid, "resend") == [] and count_submits(pipe.events(sid), parts).reaching == 1


def test_a_held_message_whose_carrier_is_no_longer_routed_goes_whole_and_says_so(pipe: Pipeline) -> None:
    gone = ScriptedCarrier("gone", _partly_refused(("g-1", "g-2")))
    other = ScriptedCarrier("other")
    sid = pipe.send(body=LONG)
    pipe.dispatch(route=[gone, other])
    assert other.submitted == [] and pipe.message(sid)["carrier"] == "gone"
    assert [p["carrier_message_id"] for p in pipe.parts(sid)] == ["g-1", "g-2"]
    pipe.clock.advance(60)
    pipe.dispatch(route=[other])  # the configuration changed: "gone" is not on the route any more
    assert pipe.status(sid) == "sent" and pipe.message(sid)["carrier"] == "other"
    assert other.submitted[0].continuation is None
    [resend] = pipe.events(sid, "resend")
    assert resend["detail"]["reason"] == "gone accepted parts 1-2 of 3; other took the whole message again"
    assert count_submits(pipe.events(sid), pipe.parts(sid)).reaching == 2


def test_a_held_message_that_runs_out_of_retries_fails_and_says_what_is_out(pipe: Pipeline) -> None:
    trouble = CarrierRetryableError("system error", carrier_code="ESME_RSYSERR")
    held = ScriptedCarrier("held", _partly_refused(("h-1",)), default=trouble)
    sid = pipe.send(body=LONG)
    policy = RetryPolicy(max_attempts=2, base_delay=1, max_delay=1, jitter=0)
    for _ in range(2):
        pipe.dispatch(route=[held], retry=policy)
        pipe.clock.advance(5)
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"]) == ("failed", "held")
    [alert] = pipe.alerts(sid)
    assert "held accepted part 1 of 3: the recipient may get that much of it" in alert["alert_text"]
    failed = pipe.events(sid)[-1]
    assert failed["detail"]["hold"]["accepted_ids"] == ["h-1"]


def test_an_unanswered_submit_without_part_details_is_held_whole(pipe: Pipeline) -> None:
    silent = ScriptedCarrier("silent", CarrierOutcomeUnknown("no answer", carrier_code="smpp:response_timeout"))
    other = ScriptedCarrier("other")
    sid = pipe.send()
    pipe.dispatch(route=[silent, other])
    assert other.submitted == [] and pipe.status(sid) == "queued"
    pipe.clock.advance(60)
    pipe.dispatch(route=[silent, other])
    assert pipe.message(sid)["carrier"] == "silent" and other.submitted == []
    assert [e["kind"] for e in pipe.events(sid) if e["status"] == "sending"] == ["status", "resend"]


# -- a dead dispatcher ------------------------------------------------------------------------------


def _die_after_marking_sending(pipe: Pipeline, worker_id: str = "dead-dispatcher") -> None:
    """A dispatcher claims and marks its messages sending, then dies before recording anything."""
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        jobs = claim(conn, now=pipe.clock.now(), worker_id=worker_id, settings=settings)
    with pipe.db.write() as conn:
        assert mark_sending(conn, jobs, now=pipe.clock.now())


def test_a_reclaimed_message_takes_a_new_pacing_slot_not_the_one_it_went_out_in(pipe: Pipeline) -> None:
    """A message released to its paced slot keeps the slot (paced_at) until it goes out. Once
    marked sending the slot is used: a dispatcher that reclaims it from a dead one must reserve
    a new one, or the sender sends above its rate (the old slot lies in the past)."""
    first, second = pipe.send_in_order(2)
    assert pipe.dispatch(lookahead=timedelta(0)) == 1  # the second waits for its slot, a second on
    assert pipe.message(second)["paced_at"] is not None
    pipe.clock.advance(1)
    _die_after_marking_sending(pipe)
    assert (pipe.status(second), pipe.message(second)["paced_at"]) == ("sending", None)
    third = pipe.send()
    pipe.clock.advance(LEASE.total_seconds() + 1)
    jobs = _claim(pipe, "rescuer", lookahead=timedelta(seconds=5))
    slots = sorted(j.slot for j in jobs)
    assert {j.message["sid"] for j in jobs} == {second, third}
    # Both reserved now, a second apart: not one in a slot long past, going out with the other.
    assert slots[0] >= pipe.clock.now() and slots[1] - slots[0] >= timedelta(seconds=1)
    assert pipe.status(first) == "sent"


def test_a_dead_dispatchers_message_is_resent_after_its_lease_with_the_reason(pipe: Pipeline) -> None:
    sid = pipe.send()
    _die_after_marking_sending(pipe)
    assert pipe.status(sid) == "sending"
    pipe.clock.advance(LEASE.total_seconds() / 2)
    assert pipe.dispatch("rescuer") == 0  # the lease still holds
    pipe.clock.advance(LEASE.total_seconds() / 2 + 1)
    assert pipe.dispatch("rescuer") == 1
    msg = pipe.message(sid)
    assert (msg["status"], msg["attempts"]) == ("sent", 2)
    [resend] = pipe.events(sid, "resend")
    assert resend["status"] == "sending"
    assert resend["detail"]["attempt"] == 2
    assert "may or may not have reached the carrier" in resend["detail"]["reason"]
    kinds = [k for k, _ in pipe.timeline(sid)]
    assert kinds.index("resend") < kinds.index("status", kinds.index("resend"))
    # one "sending" callback: the resend is not a new status
    assert pipe.callback_statuses(sid) == ["sending", "sent"]
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"


def test_a_message_that_stops_every_dispatcher_is_failed_not_sent_for_ever(pipe: Pipeline) -> None:
    """A poison message (one whose recording always fails) is sent again after each lease;
    past the carrier retry policy's attempts it is failed with 30008 instead."""
    sid = pipe.send()
    limit = DispatchSettings().retry.max_attempts
    for n in range(limit):
        if n:
            pipe.clock.advance(LEASE.total_seconds() + 1)
        _die_after_marking_sending(pipe, worker_id=f"dispatcher-{n}")
        assert (pipe.status(sid), pipe.message(sid)["attempts"]) == ("sending", n + 1)
    pipe.clock.advance(LEASE.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == 0  # nothing submitted
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 30008)
    [gave_up] = pipe.events(sid, "resend_limit")
    assert gave_up["detail"] == {"attempts": limit, "last_dispatcher": f"dispatcher-{limit - 1}"}
    assert len(pipe.events(sid, "resend")) == limit - 1
    with pipe.db.read() as conn:
        [alert] = alert_store.list_alerts(conn, account_sid=pipe.account_sid)
    assert alert["error_code"] == 30008 and f"{limit} times" in alert["alert_text"]
    # The doctor says Pigeon gave up, not that the carrier failed it, and counts the submits.
    facts = MessageFacts(message=msg, events=pipe.events(sid), parts=pipe.parts(sid), now=pipe.clock.now())
    causes = [f.cause for f in diagnose_message(facts)]
    assert causes[0] == "resend_limit" and "pigeon_resent" in causes and "carrier_failed" not in causes
    assert count_submits(pipe.events(sid), pipe.parts(sid)).reaching == limit


def test_a_claim_takes_the_earliest_due_across_queued_and_reclaimed_messages(pipe: Pipeline) -> None:
    """Each status is read in order off its index and the answers merged: a small batch gets
    the earliest due messages whatever their status, and the later ones come next."""
    stale = pipe.send()
    _die_after_marking_sending(pipe)
    pipe.clock.advance(LEASE.total_seconds() + 1)
    later = pipe.send_in_order(3)
    first = _claim(pipe, "rescuer", batch=2, lookahead=timedelta(hours=1))
    assert [j.message["sid"] for j in first] == [stale, later[0]]
    second = _claim(pipe, "rescuer", batch=2, lookahead=timedelta(hours=1))
    assert [j.message["sid"] for j in second] == later[1:]


def test_the_claim_reads_due_messages_in_index_order_without_sorting_the_backlog(pipe: Pipeline) -> None:
    """A claim must not cost more as the queue grows: every SELECT it makes reads the
    (status, next_attempt_at) index in order and stops at the batch (SQLite's plan; on
    PostgreSQL the planner's choice depends on table statistics)."""
    if not pipe.db.is_sqlite:
        pytest.skip("query plans are checked on SQLite")
    pipe.send_in_order(3)
    selects: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM messages" in statement:
            selects.append((statement, parameters))

    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        with pipe.db.lookup() as conn:
            assert dispatch_store.any_due(conn, now=pipe.clock.now(), worker_id="dispatcher-1")
        _claim(pipe, "dispatcher-1", batch=2)
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)
    assert selects
    with pipe.db.read() as conn:
        for statement, parameters in selects:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
            assert any("ix_messages_status_next_attempt_at" in step for step in plan), (statement, plan)
            assert not any(step.startswith("SCAN messages") for step in plan), (statement, plan)
    checks = [statement for statement, _ in selects if "(SELECT messages.sid" in statement]
    assert len(checks) == 1  # the check before the claim
    assert len(selects) - len(checks) == 4  # a pick per status: queued, accepted, scheduled, sending


def test_the_check_before_a_claim_reads_the_index_when_postgresql_statistics_are_stale(pipe: Pipeline) -> None:
    """PostgreSQL's statistics taken while most messages were queued, then 30,000 delivered
    ones and nothing due: the check must still read the (status, next_attempt_at) index, not the
    table from its start looking for a due row (an EXISTS, planned from those statistics, did:
    a sequential scan per status, on every dispatcher round)."""
    if pipe.db.is_sqlite:
        pytest.skip("SQLite's plans are checked above")
    now = pipe.clock.now()
    insert = sa.text(
        'INSERT INTO messages (sid, account_sid, direction, from_, "to", status, next_attempt_at,'
        " date_created, date_updated)"
        " SELECT 'SM' || lpad(to_hex(:first + g), 32, '0'), :account, 'outbound-api', :sender, :to, :status,"
        " :at, :at, :at FROM generate_series(0, :count - 1) AS g"
    )
    rows = {"account": pipe.account_sid, "sender": SENDER, "to": TO, "at": now - timedelta(seconds=5)}
    with pipe.db.write() as conn:
        conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
        conn.execute(insert, {**rows, "first": 0, "count": 400, "status": "queued"})
    with pipe.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE messages")
    with pipe.db.write() as conn:
        conn.exec_driver_sql("UPDATE messages SET status = 'delivered'")
        conn.execute(insert, {**rows, "first": 1000, "count": 30000, "status": "delivered"})

    with postgresql_plans(pipe.db.engine, lambda statement: "(SELECT messages.sid" in statement) as plans:
        with pipe.db.lookup() as conn:
            assert not dispatch_store.any_due(conn, now=now, worker_id="dispatcher-1")
    [(_, plan)] = plans
    assert "Seq Scan on messages" not in plan, plan
    assert "ix_messages_status_next_attempt_at" in plan, plan


def test_the_check_before_a_claim_finds_what_the_claim_would(pipe: Pipeline) -> None:
    """`any_due` is what keeps an empty round from taking the writer lock: it must say yes
    whenever a claim would find something, and no when it would not."""

    def due_for(worker_id: str) -> bool:
        with pipe.db.lookup() as conn:
            return dispatch_store.any_due(conn, now=pipe.clock.now(), worker_id=worker_id)

    assert not due_for("a")  # an empty store
    sid = pipe.send()
    assert due_for("a") and due_for("b")
    _die_after_marking_sending(pipe, "a")  # claimed and left in sending under a live lease
    assert not due_for("b")
    assert _claim(pipe, "b") == []
    pipe.clock.advance(LEASE.total_seconds() + 1)  # the lease runs out: due again, for a resend
    assert due_for("b")
    [job] = _claim(pipe, "b")
    assert job.message["sid"] == sid
    assert not due_for("c")  # under b's lease now


def test_the_resend_reason_names_the_dispatcher_that_died(pipe: Pipeline) -> None:
    sid = pipe.send()
    _die_after_marking_sending(pipe, "dead-dispatcher")
    pipe.clock.advance(LEASE.total_seconds() + 1)
    pipe.dispatch("rescuer")
    [resend] = pipe.events(sid, "resend")
    assert "dead-dispatcher" in resend["detail"]["reason"]
    assert "rescuer" not in resend["detail"]["reason"]


def test_a_claimed_but_unsent_message_returns_after_the_lease(pipe: Pipeline) -> None:
    sid = pipe.send()
    with pipe.db.write() as conn:
        assert claim(conn, now=pipe.clock.now(), worker_id="dead", settings=DispatchSettings())
    assert pipe.dispatch("rescuer") == 0
    pipe.clock.advance(LEASE.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == 1
    assert pipe.status(sid) == "sent"
    assert pipe.events(sid, "resend") == []  # it never reached a carrier: not a resend


def test_a_reclaimed_message_of_a_busy_sender_is_still_resent(pipe: Pipeline) -> None:
    stuck = pipe.send()
    pipe.clock.advance(0.001)
    others = [pipe.send(to=f"+1415555{3000 + i:04d}") for i in range(60)]
    _die_after_marking_sending(pipe)  # reserves the sender's slots for the next 60 s
    pipe.clock.advance(LEASE.total_seconds() + 1)
    for _ in range(120):
        pipe.dispatch("rescuer")
        pipe.clock.advance(1)
    assert [pipe.status(s) for s in others] == ["sent"] * len(others)
    assert pipe.status(stuck) == "sent"


def test_record_after_a_lost_lease_does_not_overwrite_the_resend(pipe: Pipeline) -> None:
    """The slow dispatcher answers after another has resent: the message is sent once in its status."""
    sid = pipe.send()
    settings = DispatchSettings(lookahead=timedelta(0))
    slow = ScriptedCarrier("slow")
    with pipe.db.write() as conn:
        jobs = claim(conn, now=pipe.clock.now(), worker_id="slow", settings=settings)
    with pipe.db.write() as conn:
        jobs = mark_sending(conn, jobs, now=pipe.clock.now())
    outcomes = [asyncio.run(submit(jobs[0], [slow]))]
    pipe.clock.advance(LEASE.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == 1
    with pipe.db.write() as conn:
        record(conn, outcomes, now=pipe.clock.now(), settings=settings)
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"]) == ("sent", "simulator")
    assert [k for k, s in pipe.timeline(sid) if s == "sent"] == ["status"]


def slow_round_that_lost_its_lease(pipe: Pipeline, answers: dict[str, Exception | None]) -> list[Any]:
    """A dispatcher ("slow") claims and marks the queue, submits each message to a carrier
    answering as `answers` says (by SID), and takes longer than its lease: another
    dispatcher resends everything meanwhile. Returns slow's outcomes, not yet recorded."""
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        jobs = claim(conn, now=pipe.clock.now(), worker_id="slow", settings=settings)
    with pipe.db.write() as conn:
        jobs = mark_sending(conn, jobs, now=pipe.clock.now())

    async def submit_all() -> list[Any]:
        return [await submit(j, [ScriptedCarrier("slow", answers[j.message["sid"]])]) for j in jobs]

    outcomes = asyncio.run(submit_all())
    pipe.clock.advance(LEASE.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == len(jobs)
    return outcomes


def test_a_refusal_recorded_after_a_lost_lease_does_not_undo_the_rest_of_its_group(pipe: Pipeline) -> None:
    """Slow's carrier accepted one message and refused the other retryably; both were resent
    and sent meanwhile. Its record must not fail (which would undo the whole group), and the
    copy its carrier accepted keeps its ids, so that the copy's receipts find the message."""
    accepted, refused = pipe.send(), pipe.send(from_=OTHER_SENDER)  # two senders: both due at once
    throttled = CarrierRetryableError("throttled", carrier_code="ESME_RTHROTTLED")
    outcomes = slow_round_that_lost_its_lease(pipe, {accepted: None, refused: throttled})
    with pipe.db.write() as conn:
        record(conn, outcomes, now=pipe.clock.now(), settings=DispatchSettings())
    assert (pipe.status(accepted), pipe.status(refused)) == ("sent", "sent")
    assert [k for k, s in pipe.timeline(refused) if k == "retry"] == []
    ids = {p["carrier_message_id"] for p in pipe.parts(accepted)}
    assert "slow-1-0" in ids and len(ids) == 2  # the rescuer's copy and slow's
    [late] = pipe.events(accepted, "accepted_late")
    assert (late["detail"]["carrier"], late["detail"]["carrier_ids"]) == ("slow", ["slow-1-0"])
    assert "lease ran out" in late["detail"]["reason"]
    assert [k for k, s in pipe.timeline(accepted) if s == "sent"] == ["status"]


def test_a_hand_over_recorded_after_a_lost_lease_does_not_undo_the_rest_of_its_group(pipe: Pipeline) -> None:
    sid = pipe.send()
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        [job] = mark_sending(
            conn, claim(conn, now=pipe.clock.now(), worker_id="slow", settings=settings), now=pipe.clock.now()
        )
    pipe.clock.advance(LEASE.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == 1
    job.hand_over = HandOver("smsc", "worker-2")
    refused = CarrierRetryableError("busy", carrier_code="ESME_RTHROTTLED")
    outcome = Outcome(job=job, error=refused, tried=[("local", refused)])
    with pipe.db.write() as conn:
        record(conn, [outcome], now=pipe.clock.now(), settings=settings)
    assert pipe.status(sid) == "sent"


# -- Messaging Services ---------------------------------------------------------------------------


def test_an_accepted_message_becomes_queued_when_claimed(pipe: Pipeline) -> None:
    service_url = "https://hooks.example.com/service-status"
    service = pipe.add_service(SENDER, status_callback=service_url)
    sid = pipe.send(from_=None, service=service, callback=None)
    msg = pipe.message(sid)
    assert (msg["status"], msg["from_"]) == ("accepted", SENDER)
    assert pipe.callbacks(sid) == []
    assert pipe.dispatch() == 1
    assert pipe.status(sid) == "sent"
    assert pipe.timeline(sid)[:4] == [
        ("created", "accepted"),
        ("status", "queued"),
        ("status", "sending"),
        ("status", "sent"),
    ]
    assert pipe.events(sid, "status")[0]["detail"] == {"sender": SENDER}
    callbacks = pipe.callbacks(sid)
    assert [c["MessageStatus"] for c in callbacks] == ["queued", "sending", "sent"]
    assert pipe.callback_urls(sid) == [service_url] * 3
    assert {c["MessagingServiceSid"] for c in callbacks} == {service}


def test_a_scheduled_message_waits_for_its_time_then_goes_out(pipe: Pipeline) -> None:
    service_url = "https://hooks.example.com/service-status"
    service = pipe.add_service(SENDER, status_callback=service_url)
    send_at = (pipe.clock.now() + timedelta(hours=2)).replace(microsecond=0)
    sid = pipe.send(from_=None, service=service, callback=None, send_at=send_at)
    assert pipe.status(sid) == "scheduled"
    pipe.clock.advance(2 * 3600 - 1)
    assert pipe.dispatch() == 0 and pipe.status(sid) == "scheduled"
    pipe.clock.advance(1)
    assert pipe.dispatch() == 1
    assert pipe.status(sid) == "sent"
    assert pipe.timeline(sid)[:4] == [
        ("created", "scheduled"),
        ("status", "queued"),
        ("status", "sending"),
        ("status", "sent"),
    ]
    assert [c["MessageStatus"] for c in pipe.callbacks(sid)] == ["queued", "sending", "sent"]


def test_a_scheduled_message_counts_its_validity_from_its_time_not_from_its_creation(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    send_at = (pipe.clock.now() + timedelta(days=3)).replace(microsecond=0)
    sid = pipe.send(from_=None, service=service, callback=None, send_at=send_at, validity=600)
    pipe.clock.advance(3 * 86400 + 599)
    assert pipe.dispatch() == 1 and pipe.status(sid) == "sent"
    late = pipe.send(from_=None, service=service, callback=None, send_at=send_at + timedelta(hours=1), validity=600)
    pipe.clock.advance(3600 + 2)  # its SendAt, and 601 s more
    assert pipe.dispatch() == 0
    assert (pipe.status(late), pipe.message(late)["error_code"]) == ("failed", 30036)


def test_a_scheduled_message_canceled_before_its_time_is_never_sent(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    send_at = (pipe.clock.now() + timedelta(hours=1)).replace(microsecond=0)
    sid = pipe.send(from_=None, service=service, callback=None, send_at=send_at)
    with pipe.db.write() as conn:
        cancel(conn, pipe.account_sid, sid, "/", pipe.clock.now())
    pipe.clock.advance(3600)
    assert pipe.dispatch() == 0 and pipe.status(sid) == "canceled"


def test_canceling_a_scheduled_message_calls_back_canceled(pipe: Pipeline) -> None:
    """Canceled is a change after the initial status: like every other, it has its callback,
    queued in the transaction that cancels (REFERENCE.md: callbacks on every later change)."""
    service = pipe.add_service(SENDER, status_callback="https://hooks.example.com/service")
    send_at = (pipe.clock.now() + timedelta(hours=1)).replace(microsecond=0)
    own = pipe.send(from_=None, service=service, send_at=send_at)
    of_service = pipe.send(from_=None, service=service, callback=None, send_at=send_at)
    assert pipe.callbacks(own) == [] and pipe.callbacks(of_service) == []  # scheduled: none
    with pipe.db.write() as conn:
        cancel(conn, pipe.account_sid, own, "/", pipe.clock.now())
        cancel(conn, pipe.account_sid, of_service, "/", pipe.clock.now())
    for sid, url in ((own, CALLBACK), (of_service, "https://hooks.example.com/service")):
        assert pipe.callback_urls(sid) == [url]
        (params,) = pipe.callbacks(sid)
        assert (params["MessageSid"], params["MessageStatus"], params["SmsStatus"]) == (sid, "canceled", "canceled")
        assert params["MessagingServiceSid"] == service and "ErrorCode" not in params
    assert pipe.timeline(own) == [("created", "scheduled"), ("canceled", "canceled")]


# -- the ten-hour queue (21611) -----------------------------------------------------------------------


def test_a_sender_queue_beyond_ten_hours_of_traffic_refuses_new_messages(pipe: Pipeline) -> None:
    policy = PacingPolicy(overrides={SENDER: 0.0001})  # 3.6 segments in ten hours
    assert policy.queue_capacity(SENDER) == 3
    sids = pipe.send_in_order(3, pacing=policy)
    with pytest.raises(ApiError) as info:
        pipe.send(pacing=policy)
    assert info.value.code == 21611
    assert "queue" in info.value.message
    with pytest.raises(ApiError):
        pipe.send(pacing=policy, body="y" * 200)
    pipe.send(from_=OTHER_SENDER, pacing=policy)  # another sender's queue is its own
    # Once one goes out the queue has room again.
    assert pipe.dispatch(pacing=policy) == 2
    assert pipe.status(sids[0]) == "sent"
    pipe.send(pacing=policy)


def test_a_full_queue_through_a_messaging_service_accepts_then_fails_with_30001(pipe: Pipeline) -> None:
    """Twilio's rule: past ten hours of a sender's traffic a create from a number fails at once
    (21611); one through a Messaging Service is accepted, then fails with 30001 (queue overflow)."""
    service_url = "https://hooks.example.com/service-status"
    service = pipe.add_service(SENDER, status_callback=service_url)
    policy = PacingPolicy(overrides={SENDER: 0.0001})  # 3 segments in ten hours
    for _ in range(3):
        pipe.send(from_=None, service=service, callback=None, pacing=policy)
    over = pipe.send(from_=None, service=service, callback=None, pacing=policy)
    msg = pipe.message(over)
    assert (msg["status"], msg["error_code"]) == ("accepted", None)
    pipe.dispatch(pacing=policy)
    msg = pipe.message(over)
    assert (msg["status"], msg["error_code"], msg["price"]) == ("failed", 30001, None)
    [overflow] = pipe.events(over, "queue_overflow")
    assert overflow["status"] == "failed" and overflow["detail"]["sender"] == SENDER
    [alert] = pipe.alerts(over)
    assert alert["error_code"] == 30001
    assert [(c["MessageStatus"], c.get("ErrorCode")) for c in pipe.callbacks(over)] == [("failed", "30001")]


def test_messages_in_sending_count_towards_the_queue(pipe: Pipeline) -> None:
    policy = PacingPolicy(overrides={SENDER: 0.0001})
    for _ in range(3):
        pipe.send(pacing=policy)
    _die_after_marking_sending(pipe)
    with pytest.raises(ApiError) as info:
        pipe.send(pacing=policy)
    assert info.value.code == 21611


# -- prices ---------------------------------------------------------------------------------------------


def test_price_is_set_when_sent_and_stays_null_when_failed(pipe: Pipeline) -> None:
    sent = pipe.send()
    two_parts = pipe.send(from_=OTHER_SENDER, body="z" * 200)
    refused = pipe.send(to="+14155550105", from_="+14155550111")
    pipe.dispatch()
    pipe.clock.advance(2)
    pipe.dispatch()
    assert (pipe.message(sent)["price"], pipe.message(sent)["price_unit"]) == ("-0.00790", "USD")
    assert pipe.message(two_parts)["price"] == "-0.01580"
    assert pipe.message(refused)["status"] == "failed"
    assert pipe.message(refused)["price"] is None


def test_prices_come_from_the_configured_table(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch(prices=PriceTable(prices={"US": {"long_code": "0.0123"}}, unit="EUR"))
    assert (pipe.message(sid)["price"], pipe.message(sid)["price_unit"]) == ("-0.01230", "EUR")


class _GatedCarrier(ScriptedCarrier):
    """Accepts every submit, once `gate` is open."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.gate = asyncio.Event()
        self.waiting = 0

    async def submit(self, message: Any) -> Any:
        self.waiting += 1
        await self.gate.wait()
        return await super().submit(message)


def _two_rounds_at_once(pipe: Pipeline, *, turn: timedelta) -> tuple[list[int], list[int], list[str]]:
    """Two rounds of one process start together over four messages, two a claim, while the
    carrier holds its answers: (how many submits were waiting at two moments after both had
    the chance to claim, what each round returned, the messages)."""
    sids = pipe.send_in_order(4)
    carrier = _GatedCarrier()
    # The sender's pacing is raised so that each claim's two go out together: the turn is
    # what is tested.
    round_ = pipe.round(
        route=[carrier],
        batch=2,
        turn=turn,
        pacing=PacingPolicy(overrides={SENDER: 1000.0}),
        lookahead=timedelta(seconds=1),
    )

    async def go() -> tuple[list[int], list[int], list[str]]:
        rounds = [asyncio.ensure_future(round_.run_once()) for _ in range(2)]
        waiting = []
        for _ in range(2):
            await asyncio.sleep(0.3)
            waiting.append(carrier.waiting)
        carrier.gate.set()
        return waiting, list(await asyncio.gather(*rounds)), sids

    return asyncio.run(go())


def test_rounds_of_one_process_take_turns_to_claim(pipe: Pipeline) -> None:
    """While the first round's group is with the carrier, the second does not claim: it claims
    after the first recorded, and finds the rest in one batch (not a share of one)."""
    waiting, done, sids = _two_rounds_at_once(pipe, turn=timedelta(seconds=30))
    assert waiting == [2, 2]
    assert sorted(done) == [2, 2]
    assert [pipe.status(s) for s in sids] == ["sent"] * 4


def test_a_slow_carrier_gives_up_the_turn(pipe: Pipeline) -> None:
    """A carrier slower than `turn` does not hold up the process's other rounds."""
    waiting, done, sids = _two_rounds_at_once(pipe, turn=timedelta(milliseconds=100))
    assert waiting == [4, 4]
    assert sorted(done) == [2, 2]
    assert [pipe.status(s) for s in sids] == ["sent"] * 4


def test_idle_rounds_share_one_look_for_due_messages(pipe: Pipeline) -> None:
    """A dispatcher worker runs four rounds side by side. With nothing due they share one look
    at the store per idle period instead of taking one each (an idle worker process spent most
    of its CPU on them); a message sent meanwhile still goes out."""
    looks = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal looks
        looks += "(SELECT messages.sid" in statement

    async def scenario() -> str:
        worker = DispatcherWorker(pipe.round(), concurrency=4, idle=0.05, rematch_every=10)
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))
        await asyncio.sleep(1.0)
        idle_looks = looks
        sid = await asyncio.to_thread(pipe.send)
        deadline = time.monotonic() + 5
        while _status(pipe, sid) == "queued" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await running
        # One look per idle period at most (19-20 measured, with or without the machine loaded):
        # the rounds that wait for the turn while a look finds nothing share that look. Four
        # rounds each looking for themselves: 76-80; rounds sharing only the gate before the
        # turn (the eleventh session's version): 22-31, and 47 once under load.
        assert idle_looks <= 25, f"{idle_looks} looks in a second with nothing due (four rounds alone: about 80)"
        assert idle_looks >= 5  # it does keep looking
        return _status(pipe, sid)

    sa.event.listen(pipe.db.engine, "before_cursor_execute", count)
    try:
        assert asyncio.run(scenario()) != "queued"
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", count)


def _status(pipe: Pipeline, sid: str) -> str:
    with pipe.db.read() as conn:
        return str(conn.execute(sa.text("SELECT status FROM messages WHERE sid = :sid"), {"sid": sid}).scalar())


def test_a_submit_slower_than_the_lease_keeps_its_messages_from_other_dispatchers(pipe: Pipeline) -> None:
    """A carrier may take longer than the lease to answer (an SMSC that throttles: the
    connector's pauses add up to 31 s by default; a queue behind a bind's throughput). The
    round renews the lease of what it has with the carrier, so no other dispatcher takes the
    messages for dead and sends them again meanwhile."""
    sid = pipe.send()
    carrier = _GatedCarrier()
    lease = timedelta(milliseconds=300)
    round_ = pipe.round(route=[carrier], lease=lease)

    def claimed_until() -> datetime:
        until = pipe.message(sid)["claimed_until"]
        assert isinstance(until, datetime)
        return until

    async def go() -> int:
        running = asyncio.ensure_future(round_.run_once())
        while not carrier.waiting:
            await asyncio.sleep(0.01)
        pipe.clock.advance(60)  # the lease taken at the claim has run out
        deadline = time.monotonic() + 10
        while claimed_until() <= pipe.clock.now() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert claimed_until() == pipe.clock.now() + lease  # renewed while the carrier holds it
        assert _claim(pipe, "rescuer", lookahead=timedelta(0)) == []
        carrier.gate.set()
        return await running

    assert asyncio.run(go()) == 1
    assert pipe.status(sid) == "sent" and len(carrier.submitted) == 1
    assert [k for k, _ in pipe.timeline(sid)] == ["created", "status", "status"]


def test_a_renewal_that_fails_does_not_lose_the_carriers_answers(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store out of reach for a renewal: logged, and the group's answers are still
    recorded when they come (otherwise what the carrier took would be sent again)."""
    sid = pipe.send()
    carrier = _GatedCarrier()
    round_ = pipe.round(route=[carrier], lease=timedelta(milliseconds=150))
    tries: list[int] = []

    def out_of_reach(*_args: Any, **_kw: Any) -> int:
        tries.append(1)
        raise ConnectionError("the store is out of reach")

    monkeypatch.setattr(dispatch_store, "renew_leases", out_of_reach)

    async def go() -> int:
        running = asyncio.ensure_future(round_.run_once())
        deadline = time.monotonic() + 10
        while not tries and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        carrier.gate.set()
        return await running

    assert asyncio.run(go()) == 1 and tries
    assert pipe.status(sid) == "sent"


def test_a_late_answer_for_a_message_deleted_since_leaves_nothing_behind(pipe: Pipeline) -> None:
    """Slow's carrier took a copy after its lease ran out; the message was sent again, then
    deleted (or erased): the late copy's ids and entry must not outlive it."""
    sid = pipe.send()
    outcomes = slow_round_that_lost_its_lease(pipe, {sid: None})
    with pipe.db.write() as conn:
        delete(conn, pipe.account_sid, sid, "/")
    with pipe.db.write() as conn:
        record(conn, outcomes, now=pipe.clock.now(), settings=DispatchSettings())
    assert pipe.events(sid) == [] and pipe.parts(sid) == []
