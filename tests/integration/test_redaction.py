"""A redacted or deleted message's text is nowhere in the store afterwards, on both stores.

The text of an inbound message is copied into its incoming-message webhook (`Body`), into the
alert when that webhook fails, and into an Event Streams event (`data.body`). Redaction empties
every copy; a delete removes the message with its finished deliveries and their attempts."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import messages as message_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.sids import Prefix, new_sid
from pigeon.ports import InboundSms
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.request_log import insert_requests
from pigeon.store.schema import upgrade
from pigeon.store.settings import CONTENT_KEY, get_setting
from pigeon.store.tables import (
    message_events,
    messages,
    phone_numbers,
    request_log,
    settings,
    webhook_attempts,
    webhook_deliveries,
)
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration import test_event_streams
from tests.integration.pipeline import make_pipeline
from tests.integration.receipt_race import alongside_a_receipt, orphans, sent
from tests.integration.test_event_streams import RECEIVED, Account, add_sink, claim, event_of, subscribe

account = test_event_streams.account  # the fixture: an account with a number
TEXT = "my card number is 4111 1111 1111 1111"


def received(db: Database, clock: FrozenClock, acct: Account) -> str:
    """An inbound message whose webhook failed once (an alert) and whose event waits for its sink."""
    sink = add_sink(db, clock, acct)
    subscribe(db, clock, acct, sink, RECEIVED, version=6)
    with db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == acct.number)
            .values(sms_url="https://app.example.com/sms", sms_method="POST")
        )
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender="+14155559999", recipient=acct.number, body=TEXT),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert intake.message_sid is not None
    [inbound] = [r for r in claim(db, clock) if r["kind"] == "inbound"]
    asyncio.run(deliver_inbound(db, RecordingWebhookSender(lambda r: 500), clock, inbound))
    return intake.message_sid


def copies_of_the_text(db: Database) -> list[str]:
    """Every stored value that holds the text, wherever it is."""
    found = []
    with db.read() as conn:
        for table in (messages, webhook_deliveries, webhook_attempts, message_events):
            for row in conn.execute(sa.select(table)).mappings():
                found += [f"{table.name}.{k}" for k, v in row.items() if TEXT in str(v)]
        for alert in list_alerts(conn, limit=1000):
            found += [f"alerts.{k}" for k, v in alert.items() if TEXT in str(v)]
    return found


def test_redaction_empties_every_copy_of_the_text(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = received(db, clock, account)
    assert sorted(set(copies_of_the_text(db))) == [
        "alerts.request_variables",
        "messages.body",
        "webhook_deliveries.params",
    ]
    with db.write() as conn:
        row = message_use.redact(conn, account.sid, sid, "/path", clock.now())
    assert row["body"] == ""
    assert copies_of_the_text(db) == []
    with db.read() as conn:
        deliveries = {d["kind"]: d for d in outbox.list_deliveries(conn, message_sid=sid)}
        [alert] = list_alerts(conn, resource_sid=sid)
    params: dict[str, Any] = dict(deliveries["inbound"]["params"])
    assert params["Body"] == "" and params["From"] == "+14155559999"  # the rest as it was
    event = event_of(deliveries["event"])
    assert event["data"]["body"] == "" and event["data"]["from"] == "+14155559999"
    assert dict(alert["request_variables"])["Body"] == ""
    assert dict(alert["request_variables"])["MessageSid"] == sid


def _sent_with_its_request(db: Database, clock: FrozenClock, acct: Account, body: str) -> tuple[str, str]:
    """A message made by the accept path and delivered, and the request log's entry of the
    send that made it: (its SID, its content hash)."""
    with db.write() as conn:
        new = prepare_message(conn, acct.sid, SendRequest(to="+14155552671", from_=acct.number, body=body), clock.now())
        insert_messages(conn, [new])
        sid, fingerprint = new.message["sid"], new.message["content_hash"]
        conn.execute(messages.update().where(messages.c.sid == sid).values(status="delivered"))
        insert_requests(conn, [_request_row(acct.sid, sid, fingerprint, clock)])
    return sid, fingerprint


def _request_row(account_sid: str, resource_sid: str | None, fingerprint: str, clock: FrozenClock) -> dict[str, Any]:
    return {
        "sid": new_sid(Prefix.REQUEST),
        "account_sid": account_sid,
        "at": clock.now(),
        "method": "POST",
        "path": f"/2010-04-01/Accounts/{account_sid}/Messages.json",
        "status": 201 if resource_sid else 400,
        "error_code": None if resource_sid else 21610,
        "resource_sid": resource_sid,
        "duration_ms": 1.0,
        "to": "+14155552671",
        "content_hash": fingerprint,
    }


def _fingerprints(db: Database) -> dict[str, str | None]:
    with db.read() as conn:
        made = {r.sid: r.content_hash for r in conn.execute(sa.select(messages.c.sid, messages.c.content_hash))}
        logged = conn.execute(sa.select(request_log.c.sid, request_log.c.content_hash)).all()
    return {**made, **{r.sid: r.content_hash for r in logged}}


def test_redaction_clears_the_content_hash_of_the_message_and_of_its_request(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """The content hash is exported and listed in the request log: of a short text, it gave the
    text back to anyone trying every candidate. Redaction clears it on the message and on the
    request that made it; another message's request keeps its own."""
    sid, fingerprint = _sent_with_its_request(db, clock, account, "Your code is 482913")
    kept, kept_hash = _sent_with_its_request(db, clock, account, "Your code is 111111")
    with db.write() as conn:
        refused = _request_row(account.sid, None, fingerprint, clock)  # a refused send of the same text
        insert_requests(conn, [refused])
        message_use.redact(conn, account.sid, sid, "/path", clock.now())
    hashes = _fingerprints(db)
    assert hashes[sid] is None
    assert [h for h in hashes.values() if h == fingerprint] == [fingerprint]  # the refused send's only
    assert hashes[kept] == kept_hash and list(hashes.values()).count(kept_hash) == 2
    with db.write() as conn:  # again: nothing left to clear, nothing added to the timeline
        message_use.redact(conn, account.sid, sid, "/path", clock.now())
        kinds = [e["kind"] for e in message_store.events_for_messages(conn, [sid])[sid]]
    assert kinds.count("redacted") == 1


def test_the_content_hash_is_keyed_with_one_key_for_every_process(
    database_url: str, clock: FrozenClock, account: Account
) -> None:
    """Two processes (two engines) on one store hash the same content alike, with the install's
    key: not the plain SHA-256 of the text, which anyone can compute."""
    hashes = []
    for _ in range(2):
        other = Database.from_url(database_url)
        try:
            with other.read() as conn:
                req = SendRequest(to="+14155552671", from_=account.number, body="Your code is 482913")
                hashes.append(prepare_message(conn, account.sid, req, clock.now()).message["content_hash"])
        finally:
            other.dispose()
    plain = hashlib.sha256(f"{account.number}\x1f+14155552671\x1fYour code is 482913".encode()).hexdigest()
    assert hashes[0] == hashes[1] != plain


def test_the_upgrade_that_makes_the_key_clears_the_hashes_of_earlier_redactions(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """A store redacted before its content hashes were keyed kept them, unkeyed, on the message
    and in the request log: the upgrade that gives the store its key clears them."""
    sid, fingerprint = _sent_with_its_request(db, clock, account, "Your code is 482913")
    _, kept_hash = _sent_with_its_request(db, clock, account, "Your code is 111111")
    with db.write() as conn:  # as an earlier release redacted: the body only
        conn.execute(messages.update().where(messages.c.sid == sid).values(body=""))
        message_store.add_event(conn, message_sid=sid, account_sid=account.sid, at=clock.now(), kind="redacted")
        conn.execute(settings.delete().where(settings.c.key == CONTENT_KEY))
    upgrade(db.engine)
    hashes = _fingerprints(db)
    assert fingerprint not in hashes.values()
    assert list(hashes.values()).count(kept_hash) == 2
    with db.read() as conn:
        assert get_setting(conn, CONTENT_KEY) is not None
    upgrade(db.engine)  # with a key: nothing more to do
    assert _fingerprints(db) == hashes


def test_delete_takes_finished_deliveries_and_leaves_those_still_to_go(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid = received(db, clock, account)
    with db.write() as conn:
        conn.execute(  # the inbound webhook gave up; the event still waits for its sink
            webhook_deliveries.update()
            .where(webhook_deliveries.c.message_sid == sid, webhook_deliveries.c.kind == "inbound")
            .values(status="failed")
        )
        message_use.delete(conn, account.sid, sid, "/path")
    with db.read() as conn:
        left = outbox.list_deliveries(conn, message_sid=sid)
        attempts = conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts)).scalar_one()
        timeline = conn.execute(sa.select(sa.func.count()).select_from(message_events)).scalar_one()
    assert [d["kind"] for d in left] == ["event"]  # goes out as it was, then with the history
    assert attempts == 0 and timeline == 0


@pytest.mark.postgres
def test_a_delete_waits_for_a_receipt_committing_alongside(pg: Database, clock: FrozenClock) -> None:
    """On PostgreSQL a receipt can move a `sent` message on while the API deletes it: the delete
    waits for it and then takes its timeline row too, rather than leaving the row behind."""
    pipe = make_pipeline(pg, clock)
    try:
        sid = sent(pipe)

        def delete() -> None:
            with pg.write() as conn:
                message_use.delete(conn, pipe.account_sid, sid, "/path")

        alongside_a_receipt(pipe, sid, delete)
        with pg.read() as conn:
            assert conn.execute(sa.select(messages.c.sid).where(messages.c.sid == sid)).first() is None
        assert "message_events" not in orphans(pg)
    finally:
        pipe.spool.stop()
