"""Redaction reaches the URLs an application redirected to, on both stores.

An application may carry the inbound text into the URL of its `<Redirect>` or of an HTTP
redirect (`/next?Body=zanzibar+at+noon`, `/said/zanzibar-at-noon`). Pigeon keeps those URLs
in the webhook attempts, the inbound message's timeline and the alerts (their text, request
URL, parameters and headers), where the console and the doctor show them. Redacting the
inbound message, or a reply to it, keeps their scheme and host and replaces the rest with a
note; the URLs the number was configured with stay whole."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from pigeon.app import messages as message_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import erasure as erasure_store
from pigeon.store import messages as message_store
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.schema import downgrade, upgrade
from pigeon.store.tables import message_events, messages, phone_numbers, webhook_attempts, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration import test_event_streams
from tests.integration.test_event_streams import Account, claim

account = test_event_streams.account  # the fixture: an account with a number

TEXT = "zanzibar at noon"
WORD = "zanzibar"  # how the text shows in every URL below, whatever its spelling
APP, FALLBACK = "https://app.example.com/sms", "https://fallback.example.com/sms-failed"
HANDSET = "+14155559999"
#: The note of migration 0027, for the redactions made before it.
NOTE_0027 = "[removed when a message it held was redacted]"


def _twiml(body: str) -> WebhookResponse:
    return WebhookResponse(200, {"Content-Type": "text/xml"}, body.encode(), 1.0)


def _redirect(location: str) -> WebhookResponse:
    return WebhookResponse(302, {"Location": location}, b"", 1.0)


def application(*, fallback_answers: bool) -> RecordingWebhookSender:
    """The number's URL redirects (TwiML) to a URL with the text in its query, which redirects
    (HTTP) to one with the text in its path, which redirects to what Pigeon cannot follow
    (11216); the fallback is then asked, told the URL that failed (ErrorUrl). It answers with
    a reply, or (`fallback_answers` false) redirects to the same dead end."""

    def answer(request: WebhookRequest) -> WebhookResponse | int:
        if request.url == APP:
            return _twiml("<Response><Redirect>/next?Body=zanzibar+at+noon</Redirect></Response>")
        if request.url.startswith("https://app.example.com/next"):
            return _redirect("https://app.example.com/said/zanzibar-at-noon")
        if request.url.startswith("https://app.example.com/said/"):
            return _redirect("ftp://files.example.com/zanzibar")
        if request.url == FALLBACK and fallback_answers:
            return _twiml("<Response><Message>Noted.</Message></Response>")
        return _redirect("https://app.example.com/said/zanzibar-at-noon")

    return RecordingWebhookSender(answer)


def received(db: Database, clock: FrozenClock, acct: Account, sender: RecordingWebhookSender) -> tuple[str, list[str]]:
    """An inbound text, its webhook conversation held; (its SID, the replies' SIDs)."""
    with db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == acct.number)
            .values(sms_url=APP, sms_method="POST", sms_fallback_url=FALLBACK)
        )
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=acct.number, body=TEXT),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert intake.message_sid is not None
    [inbound] = [r for r in claim(db, clock) if r["kind"] == "inbound"]
    replies = asyncio.run(deliver_inbound(db, sender, clock, inbound))
    return intake.message_sid, replies


def _rows(conn: sa.Connection, table: sa.Table) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def where_the_word_is(db: Database) -> list[str]:
    """Every stored value, outside the message's own body, that still holds the word."""
    found = []
    with db.read() as conn:
        for table in (webhook_deliveries, webhook_attempts, message_events):
            for row in _rows(conn, table):
                found += [f"{table.name}.{k}" for k, v in row.items() if WORD in str(v).lower()]
        for row in _rows(conn, messages):
            found += [f"messages.{k}" for k, v in row.items() if WORD in str(v).lower()]
        for alert in list_alerts(conn, limit=1000):
            found += [f"alerts.{k}" for k, v in alert.items() if WORD in str(v).lower()]
    return sorted(set(found))


def attempted_urls(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(sa.select(webhook_attempts.c.url).order_by(webhook_attempts.c.id)).scalars())


def test_redacting_an_inbound_message_removes_the_text_from_its_redirect_urls(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid, _ = received(db, clock, account, application(fallback_answers=False))
    assert where_the_word_is(db) == [
        "alerts.alert_text",
        "alerts.request_url",
        "alerts.request_variables",
        "alerts.response_headers",
        "message_events.detail",
        "messages.body",
        "webhook_attempts.error",
        "webhook_attempts.location",  # where the HTTP redirects sent the requests
        "webhook_attempts.response_excerpt",  # the TwiML: replaced since redaction replaced answers
        "webhook_attempts.url",
        "webhook_deliveries.last_error",
        "webhook_deliveries.params",
    ]
    with db.write() as conn:
        message_use.redact(conn, account.sid, sid, "/path", clock.now())
    assert where_the_word_is(db) == []
    note = f"[removed when message {sid} was redacted]"
    assert attempted_urls(db) == [
        APP,  # the number's own URLs stay whole: they hold no text
        f"https://app.example.com/{note}",  # which host was asked stays
        f"https://app.example.com/{note}",
        FALLBACK,
        f"https://app.example.com/{note}",
    ]
    with db.read() as conn:
        primary, fallback = sorted(list_alerts(conn, resource_sid=sid), key=lambda a: "ErrorUrl" in str(a))
    for alert in (primary, fallback):
        assert alert["error_code"] == 11216 and alert["request_url"] == f"https://app.example.com/{note}"
        assert alert["response_headers"]["Location"] == f"ftp://files.example.com/{note}"
        assert f"redirected to 'ftp://files.example.com/{note}'" in alert["alert_text"]
    told = dict(fallback["request_variables"])
    assert told["ErrorUrl"] == f"https://app.example.com/{note}" and told["From"] == HANDSET


def test_redacting_a_reply_removes_the_text_from_the_redirects_of_the_message_it_answers(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """The reply's text may be in those URLs too, as in the answers to the same webhook."""
    sid, [reply] = received(db, clock, account, application(fallback_answers=True))
    with db.write() as conn:
        conn.execute(messages.update().where(messages.c.sid == reply).values(status="delivered"))
        message_use.redact(conn, account.sid, reply, "/path", clock.now())
    # The inbound message's own text, in its webhook's parameters (and the alert that keeps them).
    assert where_the_word_is(db) == ["alerts.request_variables", "messages.body", "webhook_deliveries.params"]
    note = f"[removed when message {reply} was redacted]"
    assert attempted_urls(db)[1:3] == [f"https://app.example.com/{note}"] * 2
    with db.write() as conn:  # then the inbound message: its own note, nothing doubled
        message_use.redact(conn, account.sid, sid, "/path", clock.now())
    assert where_the_word_is(db) == []
    assert attempted_urls(db)[1] == f"https://app.example.com/[removed when message {sid} was redacted]"


def test_erasing_a_reply_removes_the_text_from_the_redirects_of_the_message_it_answers(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """A reply to another number than the one erased: the inbound message stays, its
    redirects' URLs lose what they held, as its webhook's answers do."""
    _, [reply] = received(db, clock, account, application(fallback_answers=True))
    with db.write() as conn:
        conn.execute(messages.update().where(messages.c.sid == reply).values(status="delivered"))
        assert erasure_store.erase_messages(conn, [reply]) == 1
    note = "[removed when a message it held was erased]"
    assert attempted_urls(db)[1:3] == [f"https://app.example.com/{note}"] * 2


def test_the_upgrade_redacts_the_redirect_urls_of_earlier_redactions(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """Messages redacted before this release kept the URLs of their redirects whole: migration
    0027 replaces them, those of the inbound message that a redacted reply answers included,
    and leaves other messages' alone."""
    sid, _ = received(db, clock, account, application(fallback_answers=False))
    answered, [reply] = received(db, clock, account, application(fallback_answers=True))
    untouched, _ = received(db, clock, account, application(fallback_answers=False))
    downgrade(db.engine, "0026")
    with db.write() as conn:  # as the release before redacted: the body, and the timeline says so
        for redacted in (sid, reply):
            conn.execute(messages.update().where(messages.c.sid == redacted).values(body="", status="delivered"))
            message_store.add_event(
                conn, message_sid=redacted, account_sid=account.sid, at=clock.now(), kind="redacted"
            )
    upgrade(db.engine)
    note = f"https://app.example.com/{NOTE_0027}"
    with db.read() as conn:
        urls = {
            s: list(
                conn.execute(
                    sa.select(webhook_attempts.c.url)
                    .join(webhook_deliveries, webhook_attempts.c.delivery_id == webhook_deliveries.c.id)
                    .where(webhook_deliveries.c.message_sid == s)
                    .order_by(webhook_attempts.c.id)
                ).scalars()
            )
            for s in (sid, answered, untouched)
        }
        shown = {s: [str(a) for a in list_alerts(conn, resource_sid=s)] for s in (sid, untouched)}
    assert urls[sid] == [APP, note, note, FALLBACK, note]
    assert urls[answered] == [APP, note, note, FALLBACK]
    assert WORD in urls[untouched][1] and WORD in shown[untouched][0]
    assert all(WORD not in text.replace(f"'Body', '{TEXT}'", "") for text in shown[sid])
