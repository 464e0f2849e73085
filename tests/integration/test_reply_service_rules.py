"""A TwiML reply from a number in a Messaging Service follows the service's sending rules
(MmsConverter, ValidityPeriod, SmartEncoding) without being sent through it: its
messaging_service_sid stays null, as before. On both stores."""

from __future__ import annotations

import asyncio

from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.ports import InboundSms, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.store.tables import messaging_services, phone_numbers
from pigeon.testing import RecordingWebhookSender
from tests.integration.pipeline import SENDER, TO, Pipeline, ScriptedCarrier

MENU = "https://cdn.example.com/menu.jpg"


def _reply(pipe: Pipeline, twiml: str) -> str:
    """A text from TO to SENDER whose application answers `twiml`; the one reply's SID."""
    with pipe.db.write() as conn:
        conn.execute(messaging_services.update().values(inbound_request_url="https://app.example.com/sms"))
        receive(
            conn,
            InboundSms(carrier="simulator", sender=TO, recipient=SENDER, body="menu?"),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )
    with pipe.db.write() as conn:
        claimed = outbox.claim_due(conn, now=pipe.clock.now(), limit=10, lease_seconds=60)
        [row] = [r for r in claimed if r["kind"] == "inbound"]
    answer = WebhookResponse(status=200, headers={"content-type": "text/xml"}, body=twiml.encode(), elapsed_ms=1.0)
    [reply] = asyncio.run(deliver_inbound(pipe.db, RecordingWebhookSender([answer]), pipe.clock, row))
    return str(reply)


def test_a_reply_with_media_follows_its_numbers_service_converter(pipe: Pipeline) -> None:
    """Before, the reply had no service, so nothing converted its media: it failed with 30011
    where the same media sent through the service went as links."""
    pipe.add_service(SENDER)  # MmsConverter on, as on Twilio
    reply = _reply(pipe, f"<Response><Message>Our menu<Media>{MENU}</Media></Message></Response>")
    text_only = ScriptedCarrier("smpp", carries_media=False)
    pipe.dispatch(route=[text_only])
    row = pipe.message(reply)
    assert (row["direction"], row["status"], row["error_code"]) == ("outbound-reply", "sent", None)
    assert row["messaging_service_sid"] is None  # follows the service's rules, not sent through it
    (submitted,) = text_only.submitted
    assert (submitted.body, submitted.media_urls) == (f"Our menu\n{MENU}", ())
    (sent,) = [e for e in pipe.events(reply) if e["status"] == "sent"]
    assert sent["detail"]["media_as_links_because"] == ["route"]


def test_a_reply_from_a_number_whose_service_does_not_convert_is_refused(pipe: Pipeline) -> None:
    pipe.add_service(SENDER, mms_converter=False)
    reply = _reply(pipe, f"<Response><Message>Our menu<Media>{MENU}</Media></Message></Response>")
    text_only = ScriptedCarrier("smpp", carries_media=False)
    pipe.dispatch(route=[text_only])
    assert (pipe.status(reply), pipe.message(reply)["error_code"]) == ("failed", 30011)
    assert text_only.submitted == []


def test_a_reply_from_a_number_alone_is_not_converted(pipe: Pipeline) -> None:
    """No service, no converter: as a send from a number alone."""
    with pipe.db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == SENDER)
            .values(sms_url="https://app.example.com/sms")
        )
    reply = _reply(pipe, f"<Response><Message>Our menu<Media>{MENU}</Media></Message></Response>")
    pipe.dispatch(route=[ScriptedCarrier("smpp", carries_media=False)])
    assert (pipe.status(reply), pipe.message(reply)["error_code"]) == ("failed", 30011)
    assert pipe.message(reply)["validity_period"] is None


def test_a_reply_takes_its_numbers_service_validity_period_and_smart_encoding(pipe: Pipeline) -> None:
    pipe.add_service(SENDER)
    with pipe.db.write() as conn:
        conn.execute(messaging_services.update().values(validity_period=600, smart_encoding=True))
    reply = _reply(pipe, "<Response><Message>It\u2019s open</Message></Response>")
    row = pipe.message(reply)
    assert (row["validity_period"], row["smart_encoded"]) == (600, True)
    assert (row["body"], row["encoding"]) == ("It's open", "GSM-7")  # the curly quote made plain
