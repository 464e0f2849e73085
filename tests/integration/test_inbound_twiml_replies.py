"""What an application's TwiML answer sends, through the inbound path on each store: a text in
(`receive`), the webhook delivery it queued, the conversation and its replies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import messages as message_use
from pigeon.app import numbers as number_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import list_events
from pigeon.store.tables import message_events, messages, phone_numbers, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender

NUMBER, HANDSET = "+14155550161", "+14155557161"
APP, FALLBACK = "https://app.example.com/sms", "https://backup.example.net/sms"


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        sid = str(account_use.create_account(conn, friendly_name="twiml", now=clock.now())["sid"])
        number_use.provision(
            conn,
            account_sid=sid,
            phone_number=NUMBER,
            now=clock.now(),
            settings={"sms_url": APP, "sms_fallback_url": FALLBACK},
        )
    return sid


def text_in(db: Database, clock: FrozenClock, *, sender: str = HANDSET, to: str = NUMBER) -> dict[str, Any]:
    """A text to `to`; the claimed webhook delivery it queued."""
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=sender, recipient=to, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.write() as conn:
        [row] = [
            r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == "inbound"
        ]
    return row


def xml(body: str) -> WebhookResponse:
    return WebhookResponse(status=200, headers={"content-type": "text/xml"}, body=body.encode(), elapsed_ms=1.0)


def sent_replies(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(messages.c.from_, messages.c.to, messages.c.body)
            .where(messages.c.direction == "outbound-reply")
            .order_by(messages.c.date_created, messages.c.body)
        ).all()
    return [tuple(r) for r in rows]


def test_eleven_messages_send_the_first_ten_with_a_warning_and_no_fallback(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """The eleventh failed the whole document: nothing was sent, and the fallback was asked
    with ErrorCode=14109. Twilio sends ten and logs 14109 as a warning."""
    row = text_in(db, clock)
    answer = xml("<Response>" + "".join(f"<Message>m{i:02d}</Message>" for i in range(11)) + "</Response>")
    sender = RecordingWebhookSender([answer, xml("<Response><Message>fallback</Message></Response>")])
    assert len(asyncio.run(deliver_inbound(db, sender, clock, row))) == 10
    assert [r.url for r in sender.requests] == [APP]
    assert sorted(body for _, _, body in sent_replies(db)) == [f"m{i:02d}" for i in range(10)]
    with db.read() as conn:
        [alert] = list_alerts(conn, account_sid=account)
        status = conn.execute(sa.select(webhook_deliveries.c.status).where(webhook_deliveries.c.id == row["id"]))
        assert status.scalar_one() == "delivered"
    assert (alert["error_code"], alert["log_level"], alert["request_url"]) == (14109, "warning", APP)


def test_redirects_add_up_to_the_ten_replies_with_one_warning(db: Database, clock: FrozenClock, account: str) -> None:
    six = "".join(f"<Message>m{i}</Message>" for i in range(6))
    answers = [
        xml(f"<Response>{six}<Redirect>/sms/more</Redirect></Response>"),
        xml(f"<Response>{six}<Redirect>/sms/last</Redirect></Response>"),
        xml(f"<Response>{six}</Response>"),
    ]
    sender = RecordingWebhookSender(answers)
    assert len(asyncio.run(deliver_inbound(db, sender, clock, text_in(db, clock)))) == 10
    assert len(sender.requests) == 3  # the redirects are still followed: the application asked for them
    with db.read() as conn:
        alerts = list_alerts(conn, account_sid=account)
    assert [(a["error_code"], a["request_url"]) for a in alerts] == [(14109, "https://app.example.com/sms/more")]


GB_NUMBER, GB_HANDSET = "+447700900161", "+447700900999"


@pytest.mark.parametrize(
    ("number", "handset", "to", "expected"),
    [
        (NUMBER, HANDSET, "(415) 555-7001", "+14155557001"),
        (NUMBER, HANDSET, "415.555.7001", "+14155557001"),
        (GB_NUMBER, GB_HANDSET, "07700900456", "+447700900456"),
    ],
)
def test_a_message_to_in_national_format_is_read_in_the_sending_number_s_country(
    db: Database, clock: FrozenClock, account: str, number: str, handset: str, to: str, expected: str
) -> None:
    """It was refused with 14101: the reply's To was read as the REST API reads one, E.164 only."""
    with db.write() as conn:
        number_use.provision(
            conn, account_sid=account, phone_number=GB_NUMBER, now=clock.now(), settings={"sms_url": APP}
        )
    answer = xml(f"<Response><Message to='{to}'>hey</Message></Response>")
    row = text_in(db, clock, sender=handset, to=number)
    assert len(asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, row))) == 1
    assert sent_replies(db) == [(number, expected, "hey")]
    with db.read() as conn:
        assert list_alerts(conn, account_sid=account) == []


def test_a_message_to_that_is_no_number_in_the_sender_s_country_is_still_14101(
    db: Database, clock: FrozenClock, account: str
) -> None:
    answer = xml("<Response><Message to='07700900456'>hey</Message><Message>you</Message></Response>")
    assert len(asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, text_in(db, clock)))) == 1
    assert sent_replies(db) == [(NUMBER, HANDSET, "you")]
    with db.read() as conn:
        assert [a["error_code"] for a in list_alerts(conn, account_sid=account)] == [14101]


def test_the_rest_api_s_to_stays_e164_only(db: Database, clock: FrozenClock, account: str) -> None:
    """Only TwiML reads a national `to` by its sender: a create request has no such rule."""
    with db.write() as conn, pytest.raises(ApiError) as err:
        prepare_message(conn, account, SendRequest(to="(415) 555-7001", from_=NUMBER, body="x"), clock.now())
    assert err.value.code == 21211


def test_the_fallback_is_told_the_failed_url_without_its_password_or_fragment(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """ErrorUrl carried the primary URL as configured, password included, to the fallback's
    host (often another company's status page)."""
    with db.write() as conn:
        conn.execute(
            sa.update(phone_numbers)
            .where(phone_numbers.c.phone_number == NUMBER)
            .values(sms_url="https://bot:s3cret-pass@app.example.com/sms?tenant=7#rc=2")
        )
    sender = RecordingWebhookSender([500, xml("<Response/>")])
    asyncio.run(deliver_inbound(db, sender, clock, text_in(db, clock)))
    assert dict(sender.requests[1].params)["ErrorUrl"] == "https://app.example.com/sms?tenant=7"


def test_a_text_the_application_deletes_while_it_answers_still_gets_its_replies(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """A privacy pattern: the application keeps what it needs, deletes the text at Pigeon, then
    answers. Its reply was dropped (replies were sent from the text's row, gone by then), and a
    `webhook` timeline entry was written for the deleted text: an orphan row."""
    row = text_in(db, clock)
    inbound = row["message_sid"]

    def app(_request: WebhookRequest) -> WebhookResponse:
        with db.write() as conn:
            message_use.delete(conn, account, inbound, "/test")
        return xml("<Response><Message>Thanks, got it</Message></Response>")

    [reply] = asyncio.run(deliver_inbound(db, RecordingWebhookSender(app), clock, row))
    assert sent_replies(db) == [(NUMBER, HANDSET, "Thanks, got it")]
    with db.read() as conn:
        assert conn.execute(sa.select(messages.c.sid).where(messages.c.sid == inbound)).first() is None
        left = conn.execute(sa.select(message_events.c.kind).where(message_events.c.message_sid == inbound)).all()
        assert left == []
        [reply_to] = [e for e in list_events(conn, reply) if e["kind"] == "reply_to"]
        assert reply_to["detail"] == {"inbound_message_sid": inbound}
        # The exchange itself is kept, in the webhook history.
        assert [a["status_code"] for a in outbox.list_attempts(conn, delivery_id=row["id"])] == [200]
        assert list_alerts(conn, account_sid=account) == []


def test_a_text_deleted_while_its_webhook_failed_keeps_no_timeline(
    db: Database, clock: FrozenClock, account: str
) -> None:
    row = text_in(db, clock)
    inbound = row["message_sid"]

    def app(request: WebhookRequest) -> int:
        if request.url == APP:
            with db.write() as conn:
                message_use.delete(conn, account, inbound, "/test")
        return 500

    assert asyncio.run(deliver_inbound(db, RecordingWebhookSender(app), clock, row)) == []
    with db.read() as conn:
        assert conn.execute(sa.select(message_events).where(message_events.c.message_sid == inbound)).all() == []
        assert sorted(a["error_code"] for a in list_alerts(conn, account_sid=account)) == [11200, 11200]
