"""An inbound message's conversation with the application, on each store: what an answer may ask
for, what cannot be read, what a worker that lost its lease may record, and START after a
number joined a Messaging Service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import inbound_exchange
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.domain.retry import RetryPolicy
from pigeon.logs import JsonFormatter
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.optouts import find_opt_out, record_opt_out
from pigeon.store.tables import messages, phone_numbers, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker

NUMBER, HANDSET = "+14155550181", "+14155557181"
APP = "https://app.example.com/sms"


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        sid = str(account_use.create_account(conn, friendly_name="convo", now=clock.now())["sid"])
        number_use.provision(conn, account_sid=sid, phone_number=NUMBER, now=clock.now(), settings={"sms_url": APP})
    return sid


def text_in(db: Database, clock: FrozenClock, body: str = "hello") -> dict[str, Any]:
    """A text from the handset; the claimed webhook delivery it queued."""
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body=body),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.write() as conn:
        [row] = [
            r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == "inbound"
        ]
    return row


def xml(body: str, content_type: str = "text/xml") -> WebhookResponse:
    return WebhookResponse(status=200, headers={"content-type": content_type}, body=body.encode(), elapsed_ms=1.0)


def replies(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(messages.c.direction == "outbound-reply")).scalar_one()
        )


def test_an_answer_that_asks_for_ten_replies_and_itself_for_ever_sends_ten(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """Ten replies, then the same again: the replies past the tenth are not sent (a warning,
    14109, once), and the redirect loop ends at the redirect limit (14106)."""
    many = "".join(f"<Message to='+1415555{7200 + i:04d}'>hi {i}</Message>" for i in range(10))

    def answer(request: WebhookRequest) -> WebhookResponse:
        return xml(f"<Response>{many}<Redirect>{APP}?again</Redirect></Response>")

    sent = asyncio.run(deliver_inbound(db, RecordingWebhookSender(answer), clock, text_in(db, clock)))
    assert len(sent) == 10 and replies(db) == 10
    with db.read() as conn:
        found = [(a["error_code"], a["log_level"]) for a in list_alerts(conn, account_sid=account)]
    assert sorted(found) == [(14106, "error"), (14109, "warning")]


@pytest.mark.parametrize(
    "answer",
    [
        xml('<?xml version="1.0" encoding="Shift_JIS"?><Response><Message>x</Message></Response>'),
        xml('<?xml version="1.0" encoding="no-such-thing"?><Response/>'),
    ],
)
def test_an_answer_in_an_encoding_that_cannot_be_read_fails_once(
    db: Database, clock: FrozenClock, account: str, answer: WebhookResponse
) -> None:
    """It used to escape as a ValueError or LookupError: the delivery stayed claimed, and came
    back at every lease's end, for ever."""
    row = text_in(db, clock)
    asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, row))
    with db.read() as conn:
        status = conn.execute(
            sa.select(webhook_deliveries.c.status).where(webhook_deliveries.c.id == row["id"])
        ).scalar_one()
        assert [a["error_code"] for a in list_alerts(conn, account_sid=account)] == [12100]
    assert status == "failed"


def test_a_text_answer_in_a_charset_that_is_no_text_encoding_is_read_as_utf8(
    db: Database, clock: FrozenClock, account: str
) -> None:
    answer = xml("thanks", content_type="text/plain; charset=base64")
    assert len(asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, text_in(db, clock)))) == 1


def test_a_worker_whose_lease_was_taken_over_records_no_replies(db: Database, clock: FrozenClock, account: str) -> None:
    row = text_in(db, clock)
    clock.advance(61)  # the conversation outlived its lease: another worker took it over
    with db.write() as conn:
        [taken] = outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60)
    assert taken["id"] == row["id"]
    answer = xml("<Response><Message>once</Message></Response>")
    assert asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, row)) == []
    assert replies(db) == 0
    # The worker holding the lease now records its own conversation's reply: one, not two.
    assert len(asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, taken))) == 1
    assert replies(db) == 1


def test_start_lifts_an_opt_out_of_the_number_made_before_it_joined_a_service(
    db: Database, clock: FrozenClock, account: str
) -> None:
    now = clock.now()
    with db.write() as conn:
        record_opt_out(
            conn,
            account_sid=account,
            sender=NUMBER,
            recipient=HANDSET,
            scope="number",
            keyword="STOP",
            inbound_message_sid=None,
            now=now,
        )
        service = service_use.create(conn, account, {"FriendlyName": "pool"}, now)["sid"]
        number = number_use.list_for_account(conn, account, phone_number=NUMBER, friendly_name=None, offset=0, limit=1)[
            0
        ]
        service_use.add_number(conn, account, service, number["sid"], short_code=False, path="/p", now=now)
    clock.advance(1)
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="START"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.read() as conn:
        assert find_opt_out(conn, account_sid=account, sender=NUMBER, recipient=HANDSET, service_sid=service) is None


def test_a_relative_redirect_is_read_against_the_document_that_gave_it(
    db: Database, clock: FrozenClock, account: str
) -> None:
    answers = [
        xml("<Response><Redirect>/sms/next?step=2</Redirect></Response>"),
        xml("<Response><Redirect method='GET'>last</Redirect></Response>"),
        xml("<Response><Message>done</Message></Response>"),
    ]
    sender = RecordingWebhookSender(answers)
    assert len(asyncio.run(deliver_inbound(db, sender, clock, text_in(db, clock)))) == 1
    assert [r.url.split("?")[0] for r in sender.requests] == [
        APP,
        "https://app.example.com/sms/next",
        "https://app.example.com/sms/last",
    ]


def test_an_application_url_s_password_stays_out_of_the_logs(
    db: Database, clock: FrozenClock, account: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer Pigeon fails to read is logged with the URL it came from, without its password."""
    with db.write() as conn:
        conn.execute(
            sa.update(phone_numbers)
            .where(phone_numbers.c.phone_number == NUMBER)
            .values(sms_url="https://user:s3cret@app.example.com/sms")
        )

    def unreadable(*args: object) -> None:
        raise RuntimeError("a bug reading the answer")

    monkeypatch.setattr(inbound_exchange, "interpret", unreadable)
    row = text_in(db, clock)
    with caplog.at_level(logging.ERROR, logger="pigeon.app.inbound_exchange"):
        asyncio.run(deliver_inbound(db, RecordingWebhookSender([xml("<Response/>")]), clock, row))
    [record] = [r for r in caplog.records if r.name == "pigeon.app.inbound_exchange"]
    assert "app.example.com/sms" in record.getMessage()
    assert "s3cret" not in JsonFormatter().format(record)


@pytest.mark.parametrize("target", ["http://[::1", "http://127.0.0.1:99999/x", "ftp://files.example.com/twiml"])
def test_a_redirect_to_no_usable_url_ends_the_conversation_with_11100(
    db: Database, clock: FrozenClock, account: str, target: str
) -> None:
    """The first one made urljoin raise ValueError: the delivery stayed claimed and came back at
    every lease's end, the application asked again each time, and nothing was sent. Now the
    Message before the Redirect goes out, as Twilio runs the verbs in order, and the Redirect
    is an alert with Twilio's code for a bad URL in a verb."""
    row = text_in(db, clock)
    answer = xml(f"<Response><Message>before</Message><Redirect>{target}</Redirect></Response>")
    sender = RecordingWebhookSender([answer])
    assert len(asyncio.run(deliver_inbound(db, sender, clock, row))) == 1
    assert len(sender.requests) == 1
    with db.read() as conn:
        status = conn.execute(
            sa.select(webhook_deliveries.c.status).where(webhook_deliveries.c.id == row["id"])
        ).scalar_one()
        [alert] = list_alerts(conn, account_sid=account)
    assert status == "failed"
    assert alert["error_code"] == 11100 and alert["request_url"] == APP


def test_a_delivery_whose_handling_raises_is_retried_with_backoff_then_fails_with_an_alert(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """A bug that raises on every attempt used to leave the delivery claimed, to be claimed
    again at every lease's end, for ever and without an alert. It is a failed attempt now."""
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )

    async def broken(row: dict[str, Any], answered: Callable[[], None]) -> None:
        raise RuntimeError("a bug in the handler")

    policy = RetryPolicy(max_attempts=2, base_delay=5.0, max_delay=5.0, jitter=0)
    worker = WebhookWorker(db, RecordingWebhookSender(), clock, policy=policy, handlers={"inbound": broken})
    assert asyncio.run(worker.run_once()) == 1
    with db.read() as conn:
        [row] = conn.execute(sa.select(webhook_deliveries)).mappings().all()
        assert list_alerts(conn, account_sid=account) == []
    assert (row["status"], row["attempts"], row["claimed_until"]) == ("pending", 1, None)
    assert asyncio.run(worker.run_once()) == 0  # backing off, not due yet
    clock.advance(5)
    assert asyncio.run(worker.run_once()) == 1
    with db.read() as conn:
        [row] = conn.execute(sa.select(webhook_deliveries)).mappings().all()
        [alert] = list_alerts(conn, account_sid=account)
        attempts = outbox.list_attempts(conn, delivery_id=row["id"])
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert alert["error_code"] == 12400 and "a bug in the handler" in alert["alert_text"]
    assert [a["error_code"] for a in attempts] == [12400, 12400]


def test_a_reply_s_relative_action_and_media_are_read_against_the_document_that_gave_them(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """They were refused (21609, 21620) and the reply dropped; Twilio reads them against the
    document's URL, as Pigeon already did for <Redirect>. The second document came from a
    redirect: its own URL is the base, not the first one's."""
    answers = [
        xml(
            "<Response><Message statusCallback='/status'><Body>one</Body><Media>img/cat.jpg</Media></Message>"
            "<Redirect>/hooks/more</Redirect></Response>"
        ),
        xml("<Response><Message action='done'>two</Message></Response>"),
    ]
    assert len(asyncio.run(deliver_inbound(db, RecordingWebhookSender(answers), clock, text_in(db, clock)))) == 2
    with db.read() as conn:
        sent = conn.execute(
            sa.select(messages.c.body, messages.c.status_callback, messages.c.num_media)
            .where(messages.c.direction == "outbound-reply")
            .order_by(messages.c.body)
        ).all()
        assert list_alerts(conn, account_sid=account) == []
    assert [tuple(r) for r in sent] == [
        ("one", "https://app.example.com/status", 1),
        ("two", "https://app.example.com/hooks/done", 0),
    ]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("<Message action='http://[::1'>hi</Message>", 14105),
        ("<Message statusCallback='ftp://files.example.com/cb'>hi</Message>", 14105),
        ("<Message><Body>hi</Body><Media>http://a.example:99999/x.png</Media></Message>", 14103),
    ],
)
def test_a_reply_s_url_that_is_no_url_is_a_twiml_error(
    db: Database, clock: FrozenClock, account: str, message: str, code: int
) -> None:
    """Not the 21609/21620 of the Messages API: the reply came from TwiML."""
    answer = xml(f"<Response>{message}</Response>")
    assert asyncio.run(deliver_inbound(db, RecordingWebhookSender([answer]), clock, text_in(db, clock))) == []
    with db.read() as conn:
        assert [a["error_code"] for a in list_alerts(conn, account_sid=account)] == [code]


def test_when_the_fallback_fails_too_both_failures_are_alerts(db: Database, clock: FrozenClock, account: str) -> None:
    """Only the fallback's failure was kept: the primary's, the one to fix first, was lost."""
    fallback = "https://backup.example.com/sms"
    with db.write() as conn:
        conn.execute(
            sa.update(phone_numbers).where(phone_numbers.c.phone_number == NUMBER).values(sms_fallback_url=fallback)
        )
    failing = WebhookResponse(status=500, headers={"content-type": "text/plain"}, body=b"boom", elapsed_ms=1.0)
    sender = RecordingWebhookSender([failing, xml("not xml <")])
    assert asyncio.run(deliver_inbound(db, sender, clock, text_in(db, clock))) == []
    assert [r.url for r in sender.requests] == [APP, fallback]
    with db.read() as conn:
        alerts = list_alerts(conn, account_sid=account)
    found = {(a["error_code"], a["request_url"], a["response_status"], a["response_body"]) for a in alerts}
    assert found == {(11200, APP, 500, "boom"), (12100, fallback, 200, "not xml <")}


def test_a_conversation_slower_than_its_lease_ends_before_the_lease_does(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """Each answer takes 20 s and redirects again: past the lease (60 s) another worker would
    take the delivery over and ask again, for ever. The conversation stops asking in time to
    be recorded, with an alert that says why."""

    def slow(request: WebhookRequest) -> WebhookResponse:
        clock.advance(20)
        return xml("<Response><Redirect>/sms/again</Redirect></Response>")

    sender = RecordingWebhookSender(slow)
    row = text_in(db, clock)
    assert asyncio.run(deliver_inbound(db, sender, clock, row)) == []
    assert len(sender.requests) == 3  # at 0, 20 and 40 s; not at 60 (the lease less 5 s to record)
    with db.read() as conn:
        [alert] = [a for a in list_alerts(conn, account_sid=account) if "not requested" in (a["alert_text"] or "")]
        status = conn.execute(sa.select(webhook_deliveries.c.status).where(webhook_deliveries.c.id == row["id"]))
        assert status.scalar_one() == "failed"
    assert alert["error_code"] == 11200
