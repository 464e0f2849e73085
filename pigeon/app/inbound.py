"""Inbound intake: a carrier's mobile-originated message -> our number -> opt-out keywords ->
an inbound message record -> the application's webhook (durably queued).

Everything for one inbound message happens in one transaction: the record, the opt-out
change, the automatic keyword reply and the webhook delivery commit together, so the
carrier is acknowledged only once nothing can be lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import accounts, usage
from pigeon.app.events import publish_inbound_event
from pigeon.app.inbound_keywords import apply_keyword, keyword_of, opt_out_type
from pigeon.domain import numbers, storable
from pigeon.domain.media import content_type_of
from pigeon.domain.pricing import PriceTable
from pigeon.domain.segments import plan_segments
from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import Direction, MessageStatus
from pigeon.domain.urls import ascii_url
from pigeon.ports import InboundSms
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import inbound as inbound_store
from pigeon.store import services as service_store
from pigeon.store import webhooks as outbox
from pigeon.store.messages import NewMessage, add_event, insert_messages
from pigeon.store.numbers import hold_by_number

Row = dict[str, Any]

#: The alert for an inbound message that reached no application: nothing is configured to take it.
NO_WEBHOOK_CODE = 11200
API_VERSION = "2010-04-01"


@dataclass(frozen=True)
class Intake:
    """What became of one inbound message."""

    message_sid: str | None  # None when unroutable
    account_sid: str | None
    keyword: str | None = None
    webhook_queued: bool = False
    reply_sids: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class WebhookTarget:
    url: str | None
    method: str
    fallback_url: str | None
    fallback_method: str
    source: str  # "number" or "service"


def webhook_target(number: Mapping[str, Any], service: Mapping[str, Any] | None) -> WebhookTarget:
    """Twilio's precedence: a number in a Messaging Service uses the service's inbound settings
    unless the service says to use the number's own (use_inbound_webhook_on_number)."""
    if service is not None and not service["use_inbound_webhook_on_number"]:
        return WebhookTarget(
            service["inbound_request_url"],
            service["inbound_method"],
            service["fallback_url"],
            service["fallback_method"],
            "service",
        )
    return WebhookTarget(
        number["sms_url"], number["sms_method"], number["sms_fallback_url"], number["sms_fallback_method"], "number"
    )


def _closed_reason(account: Row | None) -> str | None:
    """Why a closed account's number takes nothing: a closed account (or one whose main account
    is closed) is gone for good, so nothing is stored for it or sent to its webhook, which
    would be signed with credentials that no longer work."""
    if account is None or accounts.standing(account) != "closed":
        return None
    if account["status"] == "closed":
        return f"its account {account['sid']} is closed"
    return f"the main account {account['owner_account_sid']} of its account {account['sid']} is closed"


def _unroutable_reason(sms: InboundSms, number: Row | None, account: Row | None) -> str | None:
    if number is None:
        return f"{sms.recipient} is not a number of any account"
    if not number["sms_capable"]:
        return f"{sms.recipient} is not SMS-capable"
    sender_is_short = numbers.is_short_code(sms.sender)
    if number["number_type"] == "short_code":
        if sender_is_short:
            return "a short code cannot receive from another short code"
        if number["iso_country"] and numbers.region_of(sms.sender) != number["iso_country"]:
            return f"the short code {sms.recipient} only receives from numbers in {number['iso_country']}"
    elif sender_is_short:
        if not account or not account["allow_short_code_inbound"]:
            return f"{sms.recipient} does not take messages from short codes (the account option is off)"
        sender_country = sms.raw.get("sender_country")
        if sender_country and sender_country != numbers.region_of(number["phone_number"]):
            return f"{sms.recipient} only takes short-code messages from its own country"
    return None


def _inbound_rows(
    sms: InboundSms, number: Row, service_sid: str | None, now: datetime, prices: PriceTable | None
) -> NewMessage:
    sender = numbers.to_e164(sms.sender) or sms.sender
    plan = plan_segments(sms.body)
    # Counted as a sent text is (pigeon.app.send): an MMS is one, an SMS as many segments as its
    # text needs, or as many parts as the carrier joined if that is more (a part with little
    # text). The simulator, and a carrier that hands over a long text in one piece (SMPP's
    # message_payload), say 1.
    segments = 1 if sms.media_urls else max(sms.num_segments, plan.num_segments)
    sid = new_sid(Prefix.MMS if sms.media_urls else Prefix.SMS)
    account_sid = number["account_sid"]
    row: Row = {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": service_sid,
        "direction": str(Direction.INBOUND),
        "from_": sender,
        "to": number["phone_number"],
        "body": sms.body,
        "status": str(MessageStatus.RECEIVED),
        "encoding": plan.encoding,
        "num_segments": segments,
        "num_media": len(sms.media_urls),
        "error_code": None,
        "error_message": None,
        "price": prices.inbound_price(number["phone_number"], segments, country=number["iso_country"])
        if prices
        else None,
        "price_unit": prices.unit if prices else "USD",
        "status_callback": None,
        "validity_period": None,
        "send_at": None,
        "smart_encoded": False,
        "content_hash": None,
        "attempts": 0,
        "next_attempt_at": None,
        "claimed_by": None,
        "claimed_until": None,
        "date_created": now,
        "date_updated": now,
        "date_sent": now,
        "carrier": sms.carrier,
    }
    media = [
        {
            "sid": new_sid(Prefix.MEDIA),
            "account_sid": account_sid,
            "message_sid": sid,
            "position": i,
            "url": url,
            "content_type": content_type_of(url),
            "date_created": now,
            "date_updated": now,
        }
        # A carrier's URL is kept as a client requests it (non-ASCII percent-encoded), as a
        # sent message's is: the content URL given to the webhook redirects to it.
        for i, url in enumerate(ascii_url(u) for u in sms.media_urls)
    ]
    event = {
        "message_sid": sid,
        "account_sid": account_sid,
        "at": now,
        "kind": "received",
        "status": str(MessageStatus.RECEIVED),
        "error_code": None,
        "detail": {
            "carrier": sms.carrier,
            "num_segments": segments,
            **({"raw": dict(sms.raw)} if sms.raw else {}),
        },
    }
    return NewMessage(message=row, media=media, events=[event])


def as_keyed(new: NewMessage, number: Row) -> NewMessage:
    """The inbound message as its keyword is applied: its sender in E.164, read in the country
    of the number it texted when the carrier wrote it nationally (`numbers.sender_as_keyed`).
    The record, its event and its webhook keep the sender as it came; an opt-out (or START)
    is keyed as sends to that person are written, so the create check and the dispatcher's
    (exact matches on `to`) find it, and the automatic reply goes to a number it can reach."""
    sender = new.message["from_"]
    keyed = numbers.sender_as_keyed(sender, numbers.region_of(number["phone_number"]) or number["iso_country"])
    return new if keyed == sender else dataclasses.replace(new, message={**new.message, "from_": keyed})


def webhook_params(new: NewMessage, *, base_url: str, opt_out_type: str | None) -> list[tuple[str, str]]:
    """The incoming-message webhook's parameters, as Twilio sends them."""
    m = new.message
    params = [
        ("ToCountry", numbers.region_of(m["to"]) or ""),
        ("ToState", ""),
        ("ToCity", ""),
        ("ToZip", ""),
        ("FromCountry", numbers.region_of(m["from_"]) or ""),
        ("FromState", ""),
        ("FromCity", ""),
        ("FromZip", ""),
        ("SmsMessageSid", m["sid"]),
        ("NumMedia", str(m["num_media"])),
        ("SmsSid", m["sid"]),
        ("SmsStatus", "received"),
        ("Body", m["body"]),
        ("To", m["to"]),
        ("NumSegments", str(m["num_segments"])),
        ("MessageSid", m["sid"]),
        ("AccountSid", m["account_sid"]),
        ("From", m["from_"]),
        ("ApiVersion", API_VERSION),
    ]
    if m["messaging_service_sid"]:
        params.append(("MessagingServiceSid", m["messaging_service_sid"]))
    if opt_out_type:
        params.append(("OptOutType", opt_out_type))
    base = base_url.rstrip("/")
    for i, media in enumerate(new.media):
        url = f"{base}/2010-04-01/Accounts/{m['account_sid']}/Messages/{m['sid']}/Media/{media['sid']}"
        params += [(f"MediaContentType{i}", media["content_type"]), (f"MediaUrl{i}", url)]
    return params


def _tell_no_one(conn: Connection, number: Row, target: WebhookTarget, sid: str, now: datetime) -> None:
    """An inbound message that no application is told of, for want of a URL: its timeline says
    so (``no_webhook``, where the URL is missing), and the error log has an alert."""
    where = "its Messaging Service has no inbound request URL" if target.source == "service" else "it has no sms_url"
    account_sid = number["account_sid"]
    add_event(
        conn, message_sid=sid, account_sid=account_sid, at=now, kind="no_webhook", detail={"source": target.source}
    )
    alert_store.add_alert(
        conn,
        account_sid=account_sid,
        error_code=NO_WEBHOOK_CODE,
        at=now,
        resource_sid=sid,
        log_level="warning",
        text=f"Message {sid} to {number['phone_number']} was stored, but no application was told: {where}.",
    )


def storable_inbound(sms: InboundSms) -> InboundSms:
    """`sms` as the store can keep it (pigeon.domain.storable): its text without NUL (how many
    were left out goes on its timeline) and its addresses cut to their columns."""
    body = storable.without_nul(sms.body)
    sender = storable.fitted(sms.sender, storable.ADDRESS_LENGTH)
    recipient = storable.fitted(sms.recipient, storable.ADDRESS_LENGTH)
    if (body, sender, recipient) == (sms.body, sms.sender, sms.recipient):
        return sms
    removed = len(sms.body) - len(body)
    raw = {**sms.raw, "nul_characters_removed": removed} if removed else sms.raw
    return dataclasses.replace(sms, sender=sender, recipient=recipient, body=body, raw=raw)


def receive(
    conn: Connection, sms: InboundSms, *, now: datetime, base_url: str, prices: PriceTable | None = None
) -> Intake:
    """Take one inbound message, priced by `prices`' inbound table (None: free). Call inside a
    write transaction."""
    sms = storable_inbound(sms)
    # Held until the commit (shared with other texts to it): a move to another account, a
    # release or leaving a Messaging Service waits for this text, or this text for it, so the
    # opt-out of a STOP is recorded where the change then copies it from, or where the number
    # is after it, never on the side it just left.
    number = hold_by_number(conn, sms.recipient)
    account = account_store.get_account(conn, number["account_sid"]) if number is not None else None
    closed = _closed_reason(account)
    reason = closed or _unroutable_reason(sms, number, account)
    if reason is not None:
        inbound_store.keep_unroutable(
            conn, from_=sms.sender, to=sms.recipient, body=sms.body, carrier=sms.carrier, reason=reason, now=now
        )
        if number is not None and closed is None:  # no one reads a closed account's error log
            alert_store.add_alert(
                conn,
                account_sid=number["account_sid"],
                error_code=21407 if not number["sms_capable"] else 11200,
                at=now,
                resource_sid=number["sid"],
                log_level="warning",
                text=f"An inbound message from {sms.sender} to {sms.recipient} was not delivered to the account: {reason}.",
            )
        return Intake(message_sid=None, account_sid=number["account_sid"] if number else None, reason=reason)
    assert number is not None
    service = (
        service_store.get_service(conn, number["messaging_service_sid"]) if number["messaging_service_sid"] else None
    )
    new = _inbound_rows(sms, number, service["sid"] if service else None, now, prices)
    insert_messages(conn, [new])
    row = new.message
    usage.count(
        conn,
        [
            usage.Counted(
                account_sid=row["account_sid"],
                outbound=False,
                media=bool(row["num_media"]),
                segments=row["num_segments"],
                price=row["price"],
            )
        ],
        now=now,
    )
    if sms.raw.get("incomplete"):
        # Parts of a long message that never came (pigeon.app.reassembly): what came is passed
        # on, and the error log says what is missing.
        missing = ", ".join(str(p) for p in sms.raw.get("missing_parts", ()))
        alert_store.add_alert(
            conn,
            account_sid=number["account_sid"],
            error_code=30009,
            at=now,
            resource_sid=new.message["sid"],
            log_level="warning",
            text=f"Message {new.message['sid']} from {new.message['from_']} arrived without part(s) {missing}: "
            "Pigeon waited for them until the carrier's reassembly timeout and passed on the text that came.",
        )
    keyword = keyword_of(new.message["body"], number, service)
    opt_out = opt_out_type(keyword, service)
    publish_inbound_event(conn, new.message, now=now, opt_out_type=opt_out)
    reply = None
    if keyword and keyword.handled:
        reply = apply_keyword(conn, keyword, number, service, as_keyed(new, number), now)
    word, replies = (keyword.word if keyword else None), ((reply,) if reply else ())
    target = webhook_target(number, service)
    account_sid, sid = number["account_sid"], new.message["sid"]
    if not target.url:
        _tell_no_one(conn, number, target, sid, now)
        return Intake(sid, account_sid, word, False, replies)
    outbox.enqueue(
        conn,
        account_sid=account_sid,
        message_sid=sid,
        kind="inbound",
        url=target.url,
        method=target.method,
        params=webhook_params(new, base_url=base_url, opt_out_type=opt_out),
        now=now,
        fallback_url=target.fallback_url,
        fallback_method=target.fallback_method,
    )
    return Intake(sid, account_sid, word, True, replies)
