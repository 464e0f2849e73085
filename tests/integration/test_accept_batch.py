"""The accept path's batch write on SQLite and PostgreSQL (`pigeon.app.accept_batch`): the
duplicate warnings that validation could not give (two identical sends at the same moment),
their wording from what each request carried, and Event Streams' ``queued`` event for the
messages created queued (and for the automatic reply to a keyword), through the API's real
writer as `pigeon.bootstrap` wires it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event

from pigeon import bootstrap
from pigeon.app import send_guard
from pigeon.app.accept_batch import write_new_messages
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.config import load_settings
from pigeon.domain.idempotency import DUPLICATE_WARNING
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import NewMessage
from pigeon.store.tables import phone_numbers
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration.test_event_streams import Account, add_sink, event_of, make_account, subscribe

TO = "+14155552671"
WINDOW = timedelta(seconds=10)
QUEUED = "com.twilio.messaging.message.queued"
SENT = "com.twilio.messaging.message.sent"


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> Account:
    return make_account(db, clock)


def validated(
    db: Database, clock: FrozenClock, acct: Account, body: str = "Your code is 1234", *, key: str | None = None
) -> NewMessage:
    """A send as the API validates it (its duplicate lookup and `guard`), not yet written."""
    now = clock.now()
    with db.read() as conn:
        new = prepare_message(
            conn,
            acct.sid,
            SendRequest(to=TO, from_=acct.number, body=body),
            now,
            duplicates_since=None if key else now - WINDOW,
        )
        send_guard.guard(conn, new, key=key, request_hash="h" if key else None, now=now, path="/p", window=WINDOW)
    return new


def write(db: Database, *batch: NewMessage) -> None:
    with db.write() as conn:
        write_new_messages(conn, batch)


def events_of(db: Database, sid: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [event_of(r) for r in outbox.list_deliveries(conn, message_sid=sid) if r["kind"] == "event"]


def warnings(db: Database, acct: Account) -> dict[str, str]:
    """The duplicate warnings: the message each is about -> its text."""
    with db.read() as conn:
        found = list_alerts(conn, account_sid=acct.sid, error_code=DUPLICATE_WARNING)
    return {a["resource_sid"]: a["alert_text"] for a in found}


# -- duplicates validation could not see ------------------------------------------------------


def test_two_identical_sends_in_one_batch_warn_of_the_second(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """Both were validated before either was written: neither saw the other, and both went
    out unwarned. The batch write compares them."""
    first, second = validated(db, clock, account), validated(db, clock, account)
    other = validated(db, clock, account, "Your code is 9999")
    assert first.duplicate_of is None and second.duplicate_of is None  # validation saw nothing
    write(db, first, second, other)
    found = warnings(db, account)
    assert list(found) == [second.message["sid"]]
    assert first.message["sid"] in found[second.message["sid"]]
    assert "neither request carried an Idempotency-Key" in found[second.message["sid"]]
    assert first.alerts == second.alerts == []  # the batch's warnings are not kept on the sends


def test_a_send_validated_before_the_other_committed_is_warned_in_its_own_batch(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    first = validated(db, clock, account)
    clock.advance(0.5)
    second = validated(db, clock, account)  # before the first is written
    write(db, first)
    write(db, second)
    assert list(warnings(db, account)) == [second.message["sid"]]
    clock.advance(30)  # past the window: an old message with the same text is no duplicate
    late = validated(db, clock, account)
    write(db, late)
    assert list(warnings(db, account)) == [second.message["sid"]]


def test_a_send_warned_when_validated_is_not_warned_again(db: Database, clock: FrozenClock, account: Account) -> None:
    write(db, validated(db, clock, account))
    clock.advance(1)
    again = validated(db, clock, account)
    assert len(again.alerts) == 1  # validation saw it
    write(db, again)
    assert list(warnings(db, account)) == [again.message["sid"]]


def test_a_send_with_a_key_is_not_warned_and_a_later_one_without_is_told_its_key(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """The earlier request carried an Idempotency-Key, the later none: the warning said that
    neither did. It names the key, in the batch and when validation sees the earlier one."""
    keyed, bare = validated(db, clock, account, key="order-17"), validated(db, clock, account)
    write(db, keyed, bare)  # in one batch
    write(db, validated(db, clock, account, "other text", key="order-18"))
    clock.advance(1)
    seen = validated(db, clock, account, "other text")  # validation sees it
    write(db, seen)
    found = warnings(db, account)
    assert sorted(found) == sorted([bare.message["sid"], seen.message["sid"]])  # never a keyed one
    assert keyed.message["sid"] in found[bare.message["sid"]]
    assert "the Idempotency-Key 'order-17' and this one none" in found[bare.message["sid"]]
    assert "the Idempotency-Key 'order-18' and this one none" in found[seen.message["sid"]]
    assert not any("neither" in text for text in found.values())
    clock.advance(1)
    again = validated(db, clock, account)  # the newest earlier one is `bare`, which carried none
    write(db, again)
    assert "neither request carried an Idempotency-Key" in warnings(db, account)[again.message["sid"]]


def test_the_api_writer_warns_of_concurrent_identical_posts_and_publishes_queued(
    db: Database, database_url: str, clock: FrozenClock
) -> None:
    """Through the API as `pigeon.bootstrap` builds it: ten pairs of identical POSTs, each pair
    at once, get ten warnings, one per pair (the reviewer counted one), and every message its
    queued event."""
    first = bootstrap.ensure_first_account(db, clock)
    assert first is not None
    acct = Account(first.account["sid"], first.account["auth_token"], first.numbers[0]["phone_number"])
    subscribe(db, clock, acct, add_sink(db, clock, acct), QUEUED)
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    url = f"/2010-04-01/Accounts/{acct.sid}/Messages.json"
    recipients = [f"+1415555{i:04d}" for i in range(400, 410)]

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pigeon.test") as client:
                answers: list[httpx.Response] = []
                for to in recipients:
                    data = {"To": to, "From": acct.number, "Body": "same text"}
                    pair = [client.post(url, data=data, auth=(acct.sid, acct.token)) for _ in range(2)]
                    answers += await asyncio.gather(*pair)
                return answers

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [201] * 20
    with db.read() as conn:
        found = list_alerts(conn, account_sid=acct.sid, error_code=DUPLICATE_WARNING, limit=100)
    assert sorted(dict(a["request_variables"])["To"] for a in found) == recipients
    for answer in answers:
        assert [e["type"] for e in events_of(db, answer.json()["sid"])] == [QUEUED]


# -- the queued event -------------------------------------------------------------------------


def test_a_message_created_queued_publishes_queued_with_its_batch(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """A send from a number is created queued, which is no status change: nothing published
    it. Its batch does, reading every account's subscriptions in one query; a Messaging
    Service's send, created accepted, gets its event when the dispatcher moves it on."""
    subscribe(db, clock, account, add_sink(db, clock, account), QUEUED, SENT)
    quiet = make_account(db, clock, "+14155550188")
    mine = validated(db, clock, account, "one")
    clock.advance(0.25)
    accepted = validated(db, clock, account, "two")
    accepted.message["status"] = "accepted"  # as a Messaging Service's send is created
    theirs = validated(db, clock, quiet, "three")
    queries: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "event_subscriptions" in statement:
            queries.append(statement)

    later = validated(db, clock, account, "four")
    later.message["status"] = "accepted"
    unstreamed = validated(db, clock, quiet, "five")
    unstreamed.streams_events = False  # as the API reads it with the account
    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        write(db, mine, accepted, theirs)
        write(db, later)  # nothing created queued: no query
        write(db, unstreamed)  # its account streams nothing: no query
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len(queries) == 1
    [event] = events_of(db, mine.message["sid"])
    assert event["type"] == QUEUED and event["time"] == "2026-01-15T12:00:00.000Z"
    data = event["data"]
    assert (data["messageSid"], data["messageStatus"], data["from"], data["to"], data["body"]) == (
        mine.message["sid"],
        "QUEUED",
        account.number,
        TO,
        "one",
    )
    assert events_of(db, accepted.message["sid"]) == [] and events_of(db, theirs.message["sid"]) == []


def test_the_automatic_reply_to_stop_publishes_queued(db: Database, clock: FrozenClock, account: Account) -> None:
    """The reply to a keyword is created queued as a send is, outside the API's writer."""
    subscribe(db, clock, account, add_sink(db, clock, account), QUEUED)
    with db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender=TO, recipient=account.number, body="STOP"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    [reply] = intake.reply_sids
    [event] = events_of(db, reply)
    assert (event["type"], event["data"]["to"], event["data"]["from"]) == (QUEUED, TO, account.number)


def test_a_send_from_an_account_without_subscriptions_reads_none(
    db: Database, database_url: str, clock: FrozenClock
) -> None:
    """Through the API: the account's read says it streams nothing, so its sends' batches read
    no subscriptions; once it subscribes, its next send has its queued event."""
    first = bootstrap.ensure_first_account(db, clock)
    assert first is not None
    acct = Account(first.account["sid"], first.account["auth_token"], first.numbers[0]["phone_number"])
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    url = f"/2010-04-01/Accounts/{acct.sid}/Messages.json"
    routes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "event_sinks" in statement:  # the subscriptions with their sinks, not the account's EXISTS
            routes.append(statement)

    async def send(body: str) -> str:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pigeon.test") as client:
                answer = await client.post(
                    url, data={"To": TO, "From": acct.number, "Body": body}, auth=(acct.sid, acct.token)
                )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["sid"])

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        quiet = asyncio.run(send("first"))
        assert routes == []
        subscribe(db, clock, acct, add_sink(db, clock, acct), QUEUED)
        streamed = asyncio.run(send("second"))
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert events_of(db, quiet) == []
    assert [e["type"] for e in events_of(db, streamed)] == [QUEUED]


def test_a_twiml_reply_publishes_queued(db: Database, clock: FrozenClock, account: Account) -> None:
    """A `<Message>` the application answers with is created queued, outside the API's writer:
    it is written as a send is, with its ``queued`` event."""
    subscribe(db, clock, account, add_sink(db, clock, account), QUEUED)
    with db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == account.number)
            .values(sms_url="https://app.example.com/sms")
        )
        receive(
            conn,
            InboundSms(carrier="simulator", sender=TO, recipient=account.number, body="again"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.write() as conn:
        [delivery] = [
            r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == "inbound"
        ]

    def answer(request: WebhookRequest) -> WebhookResponse:
        body = b"<Response><Message>Thanks!</Message></Response>"
        return WebhookResponse(status=200, headers={"content-type": "text/xml"}, body=body, elapsed_ms=1.0)

    [reply] = asyncio.run(deliver_inbound(db, RecordingWebhookSender(answer), clock, delivery))
    [event] = events_of(db, reply)
    assert (event["type"], event["data"]["to"], event["data"]["body"]) == (QUEUED, TO, "Thanks!")
