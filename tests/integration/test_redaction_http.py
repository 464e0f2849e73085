"""Redaction through the API, on both stores: a redacted text is nowhere in the store after it.

Besides the copies `test_redaction` checks, a text sits in the answers kept of webhooks: the
TwiML an application answered an inbound message with holds its replies' text (on each
attempt, redirect hops included, and shown on the console's message page), and any receiver
may echo a text back. And the fingerprint of an Idempotency-Key request covers its Body."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's test client prefers its httpx fork
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.app import erasure as erasure_use
from pigeon.app.callback_delivery import deliver_one
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.config import load_settings
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.tables import metadata, phone_numbers
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration.test_console_http import sign_in
from tests.integration.test_event_streams import Account, make_account

INBOUND_TEXT = "hello, my PIN is 5521"
SECRET = "SECRET-REPLY-7731 your code is 4242"
APP = "https://app.example.com"


@pytest.fixture
def api(db: Database, database_url: str, clock: FrozenClock) -> Iterator[TestClient]:
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db, clock=clock)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client


def holding(db: Database, text: str) -> list[str]:
    """Every table.column of the store where a value holds `text`, as the reviewer scanned;
    only the columns the schema has (a test may have downgraded it below this release's)."""
    found = []
    with db.read() as conn:
        inspector = sa.inspect(conn)
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            columns = [c for c in table.columns if c.name in present]
            for row in conn.execute(sa.select(*columns)).mappings():
                found += [f"{table.name}.{k}" for k, v in row.items() if text in str(v)]
    return sorted(set(found))


def application(to: str = "") -> RecordingWebhookSender:
    """The application: redirects once, then replies with the secret (to the sender, or `to`)
    and echoes the text it got; the reply's status callback receiver echoes the secret too."""

    def answer(request: WebhookRequest) -> WebhookResponse:
        if request.url == f"{APP}/sms":
            body = f"<Response><Redirect>{APP}/next</Redirect></Response>"
        elif request.url == f"{APP}/next":
            attrs = f'action="{APP}/status"' + (f' to="{to}"' if to else "")
            body = f"<Response><Message {attrs}>{SECRET} (you said: {INBOUND_TEXT})</Message></Response>"
        else:
            body = f"noted: {SECRET}"
        return WebhookResponse(status=200, headers={"Content-Type": "text/xml"}, body=body.encode(), elapsed_ms=1.0)

    return RecordingWebhookSender(answer)


@dataclass
class Conversation:
    account: Account
    inbound: str
    reply: str


def converse(db: Database, clock: FrozenClock, to: str = "") -> Conversation:
    """An inbound text answered by TwiML with a reply; the reply delivered and its status
    callback answered."""
    acct = make_account(db, clock)
    sender = application(to)
    with db.write() as conn:
        conn.execute(
            phone_numbers.update().where(phone_numbers.c.phone_number == acct.number).values(sms_url=f"{APP}/sms")
        )
        sms = InboundSms(carrier="simulator", sender="+14155550901", recipient=acct.number, body=INBOUND_TEXT)
        inbound = receive(conn, sms, now=clock.now(), base_url="https://pigeon.example.com").message_sid
        [delivery] = outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60)
    assert inbound is not None
    [reply] = asyncio.run(deliver_inbound(db, sender, clock, delivery))
    with db.write() as conn:
        for status in (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED):
            row = message_store.transition(conn, reply, status, at=clock.now())
        enqueue_status_callback(conn, row, now=clock.now())
        [callback] = outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60)
    asyncio.run(deliver_one(db, sender, clock, callback, policy=RetryPolicy()))
    assert [r.url for r in sender.requests] == [f"{APP}/sms", f"{APP}/next", f"{APP}/status"]
    return Conversation(acct, inbound, reply)


def redact(api: TestClient, acct: Account, sid: str) -> None:
    answer = api.post(
        f"/2010-04-01/Accounts/{acct.sid}/Messages/{sid}.json", data={"Body": ""}, auth=(acct.sid, acct.token)
    )
    assert answer.status_code == 200 and answer.json()["body"] == ""


def test_redacting_a_reply_removes_its_text_from_the_answers_of_the_webhook_it_came_from(
    api: TestClient, db: Database, clock: FrozenClock
) -> None:
    c = converse(db, clock)
    assert holding(db, SECRET) == ["messages.body", "webhook_attempts.response_excerpt"]
    redact(api, c.account, c.reply)
    assert holding(db, SECRET) == []
    assert sign_in(api, c.account.sid, c.account.token) == 303
    page = api.get(f"/console/messages/{c.inbound}").text
    assert SECRET not in page
    assert f"[removed when message {c.reply} was redacted]" in page
    # The hops are still listed, with the host each asked; the URL the application redirected
    # to may hold the text, and keeps no more than that.
    assert page.count(f"{APP}/sms") >= 1 and f"{APP}/next" not in page
    assert page.count(f"{APP}/[removed when message {c.reply} was redacted]") >= 1


def test_redacting_an_inbound_message_removes_the_echoes_of_its_text(
    api: TestClient, db: Database, clock: FrozenClock
) -> None:
    c = converse(db, clock)
    assert holding(db, INBOUND_TEXT) == [
        "messages.body",
        "webhook_attempts.response_excerpt",
        "webhook_deliveries.params",
    ]
    redact(api, c.account, c.inbound)
    assert holding(db, INBOUND_TEXT) == ["messages.body"]  # the reply's: it quotes it, and is a message of its own
    redact(api, c.account, c.reply)
    assert holding(db, INBOUND_TEXT) == holding(db, SECRET) == []


def test_erasing_the_number_a_reply_went_to_removes_its_text_from_the_answer_it_came_in(
    db: Database, clock: FrozenClock
) -> None:
    """The reply went to another number than the inbound's sender: erasing that number takes
    the reply, and the answer to the inbound's webhook, which stays, no longer holds it."""
    converse(db, clock, to="+14155550902")
    assert erasure_use.erase(db, "+14155550902", clock=clock)["messages"] == 1
    assert holding(db, SECRET) == []
    assert holding(db, INBOUND_TEXT) == ["messages.body", "webhook_deliveries.params"]  # the inbound's own
