"""The replies an application's TwiML asks for: each `<Message>` becomes an `outbound-reply`.

A reply is sent as the API sends a message (the same checks, the same outbox), read as Twilio
reads TwiML: a relative `action`, `statusCallback` or `<Media>` URL against the URL of the
document that gave it, a `to` without '+' in the country of the number it is sent from. A reply the send refuses is an alert with TwiML's code for the problem
(`_REPLY_CODES`), and the other replies still go. Replies between the same two numbers are
capped (14107) to break loops between two applications answering each other. A reply from a
number in a Messaging Service follows the service's sending rules (`_send_reply`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.accept_batch import write_new_messages
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.status import Direction
from pigeon.domain.twiml import ReplyMessage
from pigeon.domain.urls import resolve
from pigeon.store import alerts as alert_store
from pigeon.store import inbound as inbound_store
from pigeon.store import messages as message_store
from pigeon.store import numbers as number_store
from pigeon.store import services as service_store

#: Reply-loop protection: at most this many replies between two numbers in the window (14107).
LOOP_LIMIT = 15
LOOP_WINDOW = timedelta(seconds=30)

Row = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A `<Message>` to send, with the URL of the document that asked for it: its relative
    action, statusCallback and Media URLs are read against that URL, as Twilio does."""

    message: ReplyMessage
    document_url: str


def _absolute(document_url: str, url: str) -> str:
    """`url` read against the document that gave it; one that is no URL is left as it is, for
    the send's own check to refuse with its code (then `_REPLY_CODES` turns it into TwiML's)."""
    return resolve(document_url, url) or url


def _recipient(to: str, sender: str) -> str:
    """A `to` in E.164, one without '+' read in the sending number's country as Twilio reads
    it; one that is no number is left as it is, for the send to refuse (14101)."""
    return numbers.in_country_of(to, sender) or to


def _sender_service(conn: Connection, account_sid: str, sender: str) -> Row | None:
    """The Messaging Service of the account's number `sender` is (None: none, or not a number of
    the account's, which the send refuses)."""
    number = number_store.find_by_number(conn, sender)
    if number is None or number["account_sid"] != account_sid or not number["messaging_service_sid"]:
        return None
    return service_store.get_service(conn, number["messaging_service_sid"], account_sid=account_sid)


@dataclass(frozen=True)
class Inbound:
    """The text replied to, as its webhook delivery holds it: the application may have deleted
    the message itself while it answered (keeping no record of what a user sent is a common
    privacy rule), and its replies still go."""

    sid: str
    from_: str
    to: str

    @classmethod
    def of(cls, delivery: Mapping[str, Any]) -> Inbound:
        params = dict(delivery["params"])
        return cls(sid=str(delivery["message_sid"]), from_=params["From"], to=params["To"])


def _send_reply(
    conn: Connection,
    delivery: Mapping[str, Any],
    inbound: Inbound,
    reply: Reply,
    now: datetime,
    pacing: PacingPolicy,
) -> str:
    message = reply.message
    sender = message.from_ or inbound.to
    recipient = _recipient(message.to, sender) if message.to else inbound.from_
    if inbound_store.recent_replies(conn, sender=sender, recipient=recipient, since=now - LOOP_WINDOW) >= LOOP_LIMIT:
        raise ApiError(14107, f"more than {LOOP_LIMIT} replies from {sender} to {recipient} in 30 s: a reply loop?")
    # A reply from a number in a Messaging Service follows that service's sending rules: its
    # ValidityPeriod and SmartEncoding here, its MmsConverter at dispatch (`store.dispatch`).
    # It is not sent *through* the service (no messaging_service_sid): Twilio's documentation
    # (REFERENCE.md, TwiML <Message>) says only that a reply is sent from the number that
    # received the message, and does not say it joins the service's log or status callbacks.
    # Its Services documentation (docs/messaging/services/api) has a service handle the inbound
    # and outbound behaviour of its numbers: so a reply's media go as links where the service's
    # own sends' would, rather than fail (30011); the smaller change, its wire shape unchanged.
    service = _sender_service(conn, delivery["account_sid"], sender)
    req = SendRequest(
        to=recipient,
        from_=sender,
        body=message.body,
        media_urls=tuple(_absolute(reply.document_url, url) for url in message.media),
        status_callback=_absolute(reply.document_url, message.action) if message.action else None,
        validity_period=str(service["validity_period"]) if service and service["validity_period"] else None,
        smart_encoded="true" if service and service["smart_encoding"] else None,
        direction=Direction.OUTBOUND_REPLY,
    )
    new = prepare_message(conn, delivery["account_sid"], req, now, pacing=pacing)
    write_new_messages(conn, [new])  # as the API writes a send: its Event Streams `queued` too
    message_store.add_event(
        conn,
        message_sid=new.message["sid"],
        account_sid=delivery["account_sid"],
        at=now,
        kind="reply_to",
        detail={"inbound_message_sid": inbound.sid},
    )
    return str(new.message["sid"])


#: The send's refusal of a reply → the TwiML code Twilio logs for it: a bad `to` (14101) or
#: `from` (14102, 14108), no usable body (14103), a media URL (14103: a Message's content is its
#: body and media) or action/statusCallback URL (14105) that is no http(s) URL.
_REPLY_CODES = {21211: 14101, 21606: 14108, 21212: 14102, 21602: 14103, 21617: 14103, 21620: 14103, 21609: 14105}


def send_replies(
    conn: Connection,
    delivery: Mapping[str, Any],
    replies: Sequence[Reply],
    now: datetime,
    pacing: PacingPolicy,
) -> list[str]:
    """Send each reply to the text of the inbound webhook `delivery`; returns the SIDs of those
    sent. A refused one is an alert."""
    if not replies:
        return []
    inbound = Inbound.of(delivery)
    sids: list[str] = []
    for reply in replies:
        try:
            sids.append(_send_reply(conn, delivery, inbound, reply, now, pacing))
        except ApiError as exc:
            alert_store.add_alert(
                conn,
                account_sid=delivery["account_sid"],
                error_code=_REPLY_CODES.get(exc.code, exc.code),
                at=now,
                resource_sid=delivery["message_sid"],
                text=f"A reply from the application's TwiML was not sent: {exc.message}",
            )
    return sids
