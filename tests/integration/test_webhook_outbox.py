"""The status-callback outbox on both stores: enqueue, ordered claims, leases, retries, alerts.

Deliveries go through the real store and the real `deliver_one`; only the HTTP side is the
RecordingWebhookSender. Signatures are checked with the twilio SDK's RequestValidator.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.callback_delivery import Outcome, deliver_one
from pigeon.app.callbacks import STATUS_CALLBACK, enqueue_status_callback
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import WebhookError
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.logs import JsonFormatter
from pigeon.ports import InboundSms, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages, list_events, transition
from pigeon.store.retention import remove_messages
from pigeon.store.tables import messaging_services, phone_numbers
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.plans import postgresql_plans
from tests.integration.worker_runs import run_until_sent, sent_while_recording

S = MessageStatus
URL = "https://hooks.example.com/status?tenant=7"
FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)


@dataclass
class Account:
    sid: str
    token: str
    number: str


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> Account:
    with db.write() as conn:
        row = account_use.create_account(conn, friendly_name="callbacks", now=clock.now())
        number = number_use.provision(conn, account_sid=row["sid"], phone_number="+14155550100", now=clock.now())
    return Account(row["sid"], row["auth_token"], number["phone_number"])


def new_message(db: Database, clock: FrozenClock, acct: Account, *, callback: str | None = URL, **extra: Any) -> str:
    with db.write() as conn:
        req = SendRequest(to="+14155552671", from_=acct.number, body="hi", status_callback=callback)
        new = prepare_message(conn, acct.sid, req, clock.now())
        new.message.update(extra)
        insert_messages(conn, [new])
    return str(new.message["sid"])


def move(db: Database, clock: FrozenClock, sid: str, *statuses: MessageStatus, **values: Any) -> list[int]:
    """Change status step by step, enqueueing each callback in the status change's transaction;
    returns the ids of the deliveries enqueued."""
    ids = []
    for status in statuses:
        with db.write() as conn:
            row = transition(conn, sid, status, at=clock.now(), **values)
            delivery_id = enqueue_status_callback(conn, row, now=clock.now(), raw_dlr_done_date="2601151200")
            if delivery_id is not None:
                ids.append(delivery_id)
    return ids


def claim(db: Database, clock: FrozenClock, limit: int = 100, lease: float = 60.0) -> list[dict[str, Any]]:
    """Claim, after checking that `any_due` (the read an idle worker polls with instead of
    claiming) says what the claim finds: anything due, leased, waiting or delivered."""
    with db.lookup() as conn:
        due = outbox.any_due(conn, now=clock.now())
    with db.write() as conn:
        rows = outbox.claim_due(conn, now=clock.now(), limit=limit, lease_seconds=lease)
    assert due == bool(rows), f"any_due said {due}, the claim found {len(rows)}"
    return rows


def worker(
    db: Database, sender: RecordingWebhookSender, clock: FrozenClock, policy: RetryPolicy = FAST
) -> WebhookWorker:
    return WebhookWorker(db, sender, clock, policy=policy, concurrency=10)


def run_once(w: WebhookWorker) -> int:
    return asyncio.run(w.run_once())


def deliveries(db: Database, sid: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return outbox.list_deliveries(conn, message_sid=sid)


# -- enqueue ----------------------------------------------------------------------------------


def test_each_status_change_enqueues_twilio_params_in_order(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT)
    move(db, clock, sid, S.UNDELIVERED, error_code=30003)
    rows = deliveries(db, sid)
    assert [r["sequence"] for r in rows] == [0, 1, 2]
    assert {r["kind"] for r in rows} == {STATUS_CALLBACK}
    assert len({r["idempotency_token"] for r in rows}) == 3
    assert all(r["url"] == URL and r["method"] == "POST" for r in rows)
    # only the first is due; the later ones wait for it
    assert [r["status"] for r in rows] == ["pending", "waiting", "waiting"]
    assert dict(rows[1]["params"]) == {
        "MessageSid": sid,
        "MessageStatus": "sent",
        "SmsSid": sid,
        "SmsStatus": "sent",
        "AccountSid": account.sid,
        "From": account.number,
        "To": "+14155552671",
        "ApiVersion": "2010-04-01",
    }
    last = dict(rows[2]["params"])
    assert last["MessageStatus"] == "undelivered"
    assert last["ErrorCode"] == "30003"
    assert last["RawDlrDoneDate"] == "2601151200"


def test_no_url_no_callback_and_the_service_url_as_fallback(db: Database, clock: FrozenClock, account: Account) -> None:
    silent = new_message(db, clock, account, callback=None)
    assert move(db, clock, silent, S.SENDING) == []
    assert deliveries(db, silent) == []

    service_sid = "MG" + "1" * 32
    with db.write() as conn:
        conn.execute(
            messaging_services.insert().values(
                sid=service_sid,
                account_sid=account.sid,
                friendly_name="svc",
                status_callback="https://svc.example.com/cb",
                date_created=clock.now(),
                date_updated=clock.now(),
            )
        )
    via_service = new_message(db, clock, account, callback=None, messaging_service_sid=service_sid)
    own = new_message(db, clock, account, callback=URL, messaging_service_sid=service_sid)
    move(db, clock, via_service, S.SENDING)
    move(db, clock, own, S.SENDING)
    [svc_row] = deliveries(db, via_service)
    assert svc_row["url"] == "https://svc.example.com/cb"
    assert dict(svc_row["params"])["MessagingServiceSid"] == service_sid
    assert deliveries(db, own)[0]["url"] == URL  # the message's own StatusCallback wins


# -- claims -----------------------------------------------------------------------------------


def test_one_message_goes_out_in_status_order(db: Database, clock: FrozenClock, account: Account) -> None:
    first = new_message(db, clock, account)
    second = new_message(db, clock, account)
    a0, a1, a2 = move(db, clock, first, S.SENDING, S.SENT, S.DELIVERED)
    (b0,) = move(db, clock, second, S.SENDING)
    with db.write() as conn:  # another URL for the same message is not held back
        other = outbox.enqueue(
            conn,
            account_sid=account.sid,
            message_sid=first,
            kind="event",
            url="https://sink.example.com/",
            method="POST",
            params=[("x", "1")],
            now=clock.now(),
        )
    got = claim(db, clock)
    assert {r["id"] for r in got} == {a0, b0, other}
    assert claim(db, clock) == []  # claimed rows are leased; a1 waits behind a0
    with db.write() as conn:
        lease = next(r["claimed_until"] for r in got if r["id"] == a0)
        assert outbox.mark_delivered(conn, a0, now=clock.now(), status_code=200, lease=lease)
    assert [r["id"] for r in claim(db, clock)] == [a1]
    assert a2 not in {r["id"] for r in got}


def test_a_dead_workers_lease_expires_and_its_outcome_is_fenced(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid = new_message(db, clock, account)
    (delivery_id,) = move(db, clock, sid, S.SENDING)
    [first] = claim(db, clock, lease=60)
    clock.advance(59)
    assert claim(db, clock) == []
    clock.advance(2)
    [again] = claim(db, clock, lease=60)
    assert again["id"] == delivery_id and again["claimed_until"] != first["claimed_until"]
    with db.write() as conn:
        # the first worker comes back late: its lease is no longer the row's
        assert not outbox.mark_delivered(
            conn, delivery_id, now=clock.now(), status_code=200, lease=first["claimed_until"]
        )
        assert outbox.mark_delivered(conn, delivery_id, now=clock.now(), status_code=200, lease=again["claimed_until"])
    [row] = deliveries(db, sid)
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["claimed_until"] is None


def _many(db: Database, clock: FrozenClock, account: Account, n: int) -> set[int]:
    with db.write() as conn:
        return {
            outbox.enqueue(
                conn,
                account_sid=account.sid,
                message_sid=None,
                kind="event",
                url=URL,
                method="POST",
                params=[("n", str(i))],
                now=clock.now(),
            )
            for i in range(n)
        }


def test_two_claimers_at_the_same_time_never_share_a_row(db: Database, clock: FrozenClock, account: Account) -> None:
    ids = _many(db, clock, account, 20)
    first_claimed = threading.Event()
    results: dict[str, list[int]] = {}
    b_done_while_a_open = threading.Event()

    def a() -> None:
        with db.write() as conn:
            results["a"] = [r["id"] for r in outbox.claim_due(conn, now=clock.now(), limit=8, lease_seconds=60)]
            first_claimed.set()
            # Hold the transaction open: PostgreSQL's second claimer must skip the locked rows,
            # SQLite's must wait for this commit.
            time.sleep(0.3)

    def b() -> None:
        first_claimed.wait(5)
        with db.write() as conn:
            results["b"] = [r["id"] for r in outbox.claim_due(conn, now=clock.now(), limit=8, lease_seconds=60)]
        if "a_committed" not in results:
            b_done_while_a_open.set()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start()
    tb.start()
    ta.join(10)
    results["a_committed"] = []
    tb.join(10)
    assert len(results["a"]) == 8 and len(results["b"]) == 8
    assert not set(results["a"]) & set(results["b"])
    assert set(results["a"]) | set(results["b"]) <= ids
    if db.engine.dialect.name == "postgresql":
        assert b_done_while_a_open.is_set()  # SKIP LOCKED: no waiting behind the other claimer


def test_claimers_racing_in_a_loop_take_every_row_exactly_once(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    ids = _many(db, clock, account, 150)
    taken: list[list[int]] = [[], [], []]

    def drain(mine: list[int]) -> None:
        while True:
            with db.write() as conn:
                rows = outbox.claim_due(conn, now=clock.now(), limit=7, lease_seconds=60)
            if not rows:
                return
            mine.extend(r["id"] for r in rows)

    threads = [threading.Thread(target=drain, args=(t,)) for t in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [i for t in taken for i in t]
    assert sorted(everything) == sorted(ids)  # none missed, none twice


def test_the_idle_check_reads_the_index_when_postgresql_statistics_are_stale(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """Statistics taken while 400 deliveries were pending, then 30,000 delivered and nothing
    due: the check an idle webhook worker polls with must read the (status, next_attempt_at)
    index, not the outbox from its start looking for a pending row."""
    if db.is_sqlite:
        pytest.skip("a PostgreSQL planner question")
    _many(db, clock, account, 400)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)")
        conn.exec_driver_sql("ANALYZE webhook_deliveries")
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE webhook_deliveries SET status = 'delivered'")
        conn.execute(
            sa.text(
                "INSERT INTO webhook_deliveries (idempotency_token, account_sid, kind, url, method, params,"
                " status, next_attempt_at, date_created, date_updated)"
                " SELECT 'bulk-' || g, :account, 'event', :url, 'POST', '[]', 'delivered', :at, :at, :at"
                " FROM generate_series(1, 30000) AS g"
            ),
            {"account": account.sid, "url": URL, "at": clock.now()},
        )

    with postgresql_plans(db.engine, lambda statement: "(SELECT cand.id" in statement) as plans:
        with db.lookup() as conn:
            assert not outbox.any_due(conn, now=clock.now())
    [(_, plan)] = plans
    assert "Seq Scan" not in plan, plan
    assert "ix_webhook_deliveries_status_next_attempt_at" in plan, plan


# -- delivering -------------------------------------------------------------------------------


def test_retry_then_success_signed_and_on_the_timeline(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    sender = RecordingWebhookSender([500, WebhookError(11205, "refused", retryable=True)])
    w = worker(db, sender, clock)
    assert run_once(w) == 1
    assert run_once(w) == 0  # backing off: not due yet
    clock.advance(1)
    assert run_once(w) == 1  # connection refused: backs off 2 s
    clock.advance(1)
    assert run_once(w) == 0
    clock.advance(1)
    assert run_once(w) == 1
    [row] = deliveries(db, sid)
    assert row["status"] == "delivered" and row["attempts"] == 3
    tokens = {r.headers["I-Twilio-Idempotency-Token"] for r in sender.requests}
    assert tokens == {row["idempotency_token"]}
    for request in sender.requests:
        assert request.url == URL and request.method == "POST"
        assert RequestValidator(account.token).validate(
            URL, dict(request.params), request.headers["X-Twilio-Signature"]
        )
    with db.read() as conn:
        attempts = outbox.list_attempts(conn, message_sid=sid)
        events = list_events(conn, sid)
    assert [(a["status_code"], a["error_code"]) for a in attempts] == [(500, 11200), (None, 11205), (200, None)]
    callback = [e for e in events if e["kind"] == "callback"]
    assert len(callback) == 1 and callback[0]["status"] == "sending"
    assert callback[0]["detail"]["status_code"] == 200 and callback[0]["detail"]["attempts"] == 3


@pytest.mark.parametrize(
    ("answer", "code", "status"),
    [(503, 11200, 503), (WebhookError(11205, "connect timeout", retryable=True), 11205, None)],
)
def test_retries_run_out_into_an_alert_and_a_timeline_entry(
    db: Database, clock: FrozenClock, account: Account, answer: int | WebhookError, code: int, status: int | None
) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    sender = RecordingWebhookSender(lambda _r: answer)
    w = worker(db, sender, clock)
    for _ in range(3):
        assert run_once(w) == 1
        clock.advance(10)
    assert run_once(w) == 0
    [row] = deliveries(db, sid)
    assert row["status"] == "failed" and row["attempts"] == 3
    with db.read() as conn:
        [alert] = list_alerts(conn, account_sid=account.sid)
        events = list_events(conn, sid)
        assert len(outbox.list_attempts(conn, delivery_id=row["id"])) == 3
    assert alert["error_code"] == code and alert["resource_sid"] == sid
    assert alert["request_url"] == URL and alert["request_method"] == "POST"
    assert alert["request_variables"]["MessageStatus"] == "sending"
    assert alert["response_status"] == status
    assert "3 attempts" in alert["alert_text"]
    [failed] = [e for e in events if e["kind"] == "callback_failed"]
    assert failed["error_code"] == code and failed["detail"]["alert_sid"] == alert["sid"]


def test_a_4xx_fails_at_once_but_429_and_408_are_retried(db: Database, clock: FrozenClock, account: Account) -> None:
    gone, busy, slow = (new_message(db, clock, account) for _ in range(3))
    for sid in (gone, busy, slow):
        move(db, clock, sid, S.SENDING)
    answers = {
        gone: WebhookResponse(404, {"Content-Type": "text/plain"}, b"no such route" * 200, 3.0),
        busy: WebhookResponse(429, {"Retry-After": "7"}, b"", 1.0),
        slow: WebhookResponse(408, {}, b"", 1.0),
    }
    sender = RecordingWebhookSender(lambda r: answers[dict(r.params)["MessageSid"]])
    assert run_once(worker(db, sender, clock)) == 3
    [g], [b], [s] = deliveries(db, gone), deliveries(db, busy), deliveries(db, slow)
    assert g["status"] == "failed" and g["attempts"] == 1 and g["last_status_code"] == 404
    assert b["status"] == "pending" and b["attempts"] == 1
    assert (b["next_attempt_at"] - clock.now()).total_seconds() == 7  # Retry-After beats the 1 s backoff
    assert s["status"] == "pending" and (s["next_attempt_at"] - clock.now()).total_seconds() == 1
    with db.read() as conn:
        [alert] = list_alerts(conn, account_sid=account.sid)
        [attempt] = outbox.list_attempts(conn, message_sid=gone)
    assert alert["error_code"] == 11200 and alert["response_status"] == 404
    assert alert["response_headers"] == {"Content-Type": "text/plain"}
    assert "1 attempt:" in alert["alert_text"]
    assert len(attempt["response_excerpt"]) == 1024  # the first kilobyte is kept


def test_a_callback_url_s_password_stays_out_of_the_logs(
    db: Database, clock: FrozenClock, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line of a callback that failed for good names its URL without the password."""
    sid = new_message(db, clock, account, callback="https://user:s3cret@hooks.example.com/status")
    move(db, clock, sid, S.SENDING)
    sender = RecordingWebhookSender(lambda _r: WebhookResponse(404, {}, b"", 1.0))
    with caplog.at_level(logging.WARNING, logger="pigeon.app.callback_delivery"):
        assert run_once(worker(db, sender, clock)) == 1
    [record] = [r for r in caplog.records if r.getMessage() == "webhook delivery failed for good"]
    assert vars(record)["url"] == "https://user:***@hooks.example.com/status"
    assert "s3cret" not in JsonFormatter().format(record)


def test_a_later_callback_waits_for_an_earlier_one_being_retried(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT, S.DELIVERED)
    failures = {"sending": 2}

    def answer(request: Any) -> int:
        status = dict(request.params)["MessageStatus"]
        if failures.get(status, 0) > 0:
            failures[status] -= 1
            return 500
        return 204

    sender = RecordingWebhookSender(answer)
    w = worker(db, sender, clock)
    for _ in range(10):
        run_once(w)
        clock.advance(5)
    seen = [dict(r.params)["MessageStatus"] for r in sender.requests]
    assert seen == ["sending", "sending", "sending", "sent", "delivered"]
    assert [r["status"] for r in deliveries(db, sid)] == ["delivered"] * 3


def test_an_exhausted_callback_does_not_block_the_next(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT)
    sender = RecordingWebhookSender(lambda r: 500 if dict(r.params)["MessageStatus"] == "sending" else 200)
    w = worker(db, sender, clock)
    for _ in range(6):
        run_once(w)
        clock.advance(10)
    assert [r["status"] for r in deliveries(db, sid)] == ["failed", "delivered"]


def test_a_deleted_message_gets_its_callback_but_no_timeline(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    [row] = claim(db, clock)
    with db.write() as conn:
        remove_messages(conn, [sid])  # as DELETE …/Messages/{sid} does
    sender = RecordingWebhookSender()
    outcome = asyncio.run(deliver_one(db, sender, clock, row, policy=FAST))
    assert outcome is Outcome.DELIVERED
    with db.read() as conn:
        assert list_events(conn, sid) == []


def test_superseded_attempt_is_recorded_but_changes_nothing(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    [stale] = claim(db, clock, lease=60)
    clock.advance(61)
    [fresh] = claim(db, clock, lease=60)
    sender = RecordingWebhookSender([500, 200])
    assert asyncio.run(deliver_one(db, sender, clock, stale, policy=FAST)) is Outcome.SUPERSEDED
    assert asyncio.run(deliver_one(db, sender, clock, fresh, policy=FAST)) is Outcome.DELIVERED
    with db.read() as conn:
        assert len(outbox.list_attempts(conn, message_sid=sid)) == 2
    assert deliveries(db, sid)[0]["status"] == "delivered"


def test_run_loop_delivers_and_stops_gracefully(db: Database, clock: FrozenClock, account: Account) -> None:
    sids = [new_message(db, clock, account) for _ in range(5)]
    for sid in sids:
        move(db, clock, sid, S.SENDING, S.SENT)

    class Slow(RecordingWebhookSender):
        async def send(self, request: Any) -> WebhookResponse:
            await asyncio.sleep(0.01)
            return await super().send(request)

    sender = Slow()
    w = WebhookWorker(db, sender, clock, policy=FAST, concurrency=3, poll_interval=0.01)
    run_until_sent(w, sender, total=10, timeout=10, stop_within=5)
    for sid in sids:
        assert [r["status"] for r in deliveries(db, sid)] == ["delivered", "delivered"]


class _Writes:
    """The store, noting each write transaction in `order` as it starts."""

    def __init__(self, db: Database, order: list[str]) -> None:
        self._db = db
        self._order = order

    def read(self) -> Any:
        return self._db.read()

    @contextmanager
    def write(self) -> Iterator[Any]:
        self._order.append("write")
        with self._db.write() as conn:
            yield conn


def test_a_delivery_says_it_was_answered_before_its_outcome_is_written(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """Status callbacks sent one by one and inbound webhooks call `answered` once the exchange
    is over and before any write, so that the worker frees the slot while the write waits."""
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    with db.write() as conn:
        conn.execute(
            sa.update(phone_numbers)
            .where(phone_numbers.c.phone_number == account.number)
            .values(sms_url="https://app.example.com/sms", sms_method="POST")
        )
        sms = InboundSms(carrier="simulator", sender="+14155559999", recipient=account.number, body="hello")
        receive(conn, sms, now=clock.now(), base_url="https://pigeon.example.com")
    rows = {r["kind"]: r for r in claim(db, clock)}
    sender = RecordingWebhookSender()

    order: list[str] = []
    outcome = asyncio.run(
        deliver_one(
            _Writes(db, order),
            sender,
            clock,
            rows[STATUS_CALLBACK],
            policy=FAST,
            answered=lambda: order.append("answered"),
        )
    )
    assert outcome is Outcome.DELIVERED
    assert order == ["answered", "write"]

    order.clear()
    asyncio.run(
        deliver_inbound(_Writes(db, order), sender, clock, rows["inbound"], answered=lambda: order.append("answered"))
    )
    assert order == ["answered", "write"]
    assert [r.url for r in sender.requests] == [URL, "https://app.example.com/sms"]


def test_no_more_requests_in_flight_than_slots(db: Database, clock: FrozenClock, account: Account) -> None:
    """`concurrency` bounds the requests in flight; the rows claimed ahead (`prefetch`) wait
    for a slot."""
    sids = [new_message(db, clock, account) for _ in range(12)]
    for sid in sids:
        move(db, clock, sid, S.SENDING)

    class Counting(RecordingWebhookSender):
        in_flight = 0
        most = 0

        async def send(self, request: Any) -> WebhookResponse:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            try:
                await asyncio.sleep(0.02)
                return await super().send(request)
            finally:
                self.in_flight -= 1

    sender = Counting()
    w = WebhookWorker(db, sender, clock, policy=FAST, concurrency=3, prefetch=2, poll_interval=0.01)
    run_until_sent(w, sender, total=12, timeout=10, stop_within=10)
    assert len(sender.requests) == 12
    assert sender.most == 3
    for sid in sids:
        assert [r["status"] for r in deliveries(db, sid)] == ["delivered"]


def test_a_slot_frees_when_the_receiver_answers_not_when_the_outcome_is_recorded(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """Outcomes are group-committed and a commit can wait for the store's writer: the requests
    in flight are capped (`concurrency`), the answered deliveries awaiting their record are
    capped apart (`max_claimed`), and while records are slow the worker keeps sending."""
    sids = [new_message(db, clock, account) for _ in range(8)]
    for sid in sids:
        move(db, clock, sid, S.SENDING)
    sender = RecordingWebhookSender()
    w = WebhookWorker(db, sender, clock, policy=FAST, concurrency=2, max_claimed=5, poll_interval=0.01)
    recorded, hold = threading.Event(), threading.Event()
    recorder = w.callbacks._recorder
    commit = recorder._commit

    def slow_commit(items: Any) -> Any:
        hold.wait(30)  # waiting for the writer lock (not holding it: claims go on)
        outcomes = commit(items)
        recorded.set()
        return outcomes

    recorder._commit = slow_commit  # type: ignore[method-assign]
    sent = sent_while_recording(w, sender, hold=hold, recorded=recorded.is_set, total=8, expect=5, timeout=10)
    # more than the two request slots went out, but no more than five unrecorded rows
    assert sent == 5
    assert len(sender.requests) == 8
    for sid in sids:
        assert [r["status"] for r in deliveries(db, sid)] == ["delivered"]


def test_a_receiver_that_hangs_keeps_its_share_of_slots_and_the_others_go_out(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """A receiver that never answers gets `receiver_share` requests in flight; its other due
    deliveries are given back unattempted (lease let go, due later, no attempt row) while the
    deliveries for another receiver, due after them, go out. Once it answers, everything is
    delivered, each exactly once."""
    hanging_url, quick_url = "https://hangs.example.com/cb", "https://quick.example.com/cb"
    hanging = [new_message(db, clock, account, callback=hanging_url) for _ in range(30)]
    quick = [new_message(db, clock, account, callback=quick_url) for _ in range(5)]
    for sid in hanging + quick:
        move(db, clock, sid, S.SENDING)

    class Hanging(RecordingWebhookSender):
        def __init__(self) -> None:
            super().__init__()
            self.release: asyncio.Event | None = None
            self.in_flight = 0
            self.most = 0

        async def send(self, request: Any) -> WebhookResponse:
            if request.url == hanging_url:
                self.release = self.release or asyncio.Event()
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
                await self.release.wait()
                self.in_flight -= 1
            return await super().send(request)

    sender = Hanging()
    w = WebhookWorker(
        db, sender, clock, policy=FAST, concurrency=20, receiver_share=4, slow_after=0.2, poll_interval=0.01
    )

    def sent_to(url: str) -> list[str]:
        return [dict(r.params)["MessageSid"] for r in sender.requests if r.url == url]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        deadline = time.monotonic() + 10
        while len(sent_to(quick_url)) < len(quick) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert sorted(sent_to(quick_url)) == sorted(quick)  # not held up by the hanging receiver

        def given_back() -> list[dict[str, Any]]:
            with db.read() as conn:
                rows = [d for sid in hanging for d in outbox.list_deliveries(conn, message_sid=sid)]
            # once the receiver counts as slow (0.2 s), its rows go back due later, for a while
            return [d for d in rows if d["claimed_until"] is None and d["next_attempt_at"] > clock.now()]

        deadline = time.monotonic() + 5
        while len(given_back()) < 26 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(given_back()) == 26
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in given_back())
        assert sender.most == 4
        assert sender.release is not None
        sender.release.set()
        deadline = time.monotonic() + 10
        while len(sent_to(hanging_url)) < len(hanging) and time.monotonic() < deadline:
            clock.advance(1)  # past each hold (the receiver is still slow for a few exchanges)
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert sorted(sent_to(hanging_url)) == sorted(hanging)  # each once: nothing given back was lost
    for sid in hanging + quick:
        assert [r["status"] for r in deliveries(db, sid)] == ["delivered"]
        with db.read() as conn:
            assert len(outbox.list_attempts(conn, message_sid=sid)) == 1  # a give-back is no attempt


def test_a_retry_after_that_is_not_ascii_digits_is_left_aside(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    # "²" (a Latin-1 byte in a header) is a digit to str.isdigit() but not to float(): the
    # outcome's recording raised, and the delivery was tried again and again.
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    busy = WebhookResponse(429, {"Retry-After": "\u00b2"}, b"", 1.0)
    assert run_once(worker(db, RecordingWebhookSender([busy]), clock)) == 1
    [d] = deliveries(db, sid)
    assert d["status"] == "pending" and d["attempts"] == 1
    assert (d["next_attempt_at"] - clock.now()).total_seconds() == 1  # the policy's own backoff


def test_an_answer_holding_nul_is_recorded_with_replacement_characters(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """PostgreSQL cannot store NUL: an answer's body holding one failed the outcome's write
    there, and the delivery was tried again and again (pigeon.domain.storable)."""
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    answer = WebhookResponse(404, {"Content-Type": "application/octet-stream"}, b"no\x00such\xffroute", 2.0)
    assert run_once(worker(db, RecordingWebhookSender([answer]), clock)) == 1
    [delivery] = deliveries(db, sid)
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 404
    with db.read() as conn:
        [attempt] = outbox.list_attempts(conn, message_sid=sid)
        [alert] = list_alerts(conn, account_sid=account.sid)
    assert attempt["response_excerpt"] == "no\ufffdsuch\ufffdroute"
    assert alert["response_body"] == "no\ufffdsuch\ufffdroute"
