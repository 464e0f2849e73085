"""Accepting a message: validate a create request and build the rows that make it durable.

`prepare_message` reads what it needs (sender ownership, opt-outs, the service) and either
raises the Twilio error for the request or returns a `NewMessage` for the group-commit
writer. Nothing is written here: a rejected request changes nothing.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.accounts import sendable_countries
from pigeon.app.queue_gauge import QueueGauge
from pigeon.domain import geo, numbers, send_options
from pigeon.domain.errors import ApiError
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.segments import MAX_BODY_CHARS, character_count, plan_segments
from pigeon.domain.senders import choose_sender
from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.domain.status import Direction, MessageStatus
from pigeon.domain.urls import is_valid_http_url
from pigeon.store import services as service_store
from pigeon.store.accounts import get_account
from pigeon.store.dispatch import queued_segments
from pigeon.store.messages import NewMessage, find_recent_duplicate
from pigeon.store.optouts import find_opt_out
from pigeon.store.send_lookup import lookup_sender

MAX_MEDIA = 10
MAX_VALIDITY_PERIOD = 36_000
SCHEDULE_MIN_AHEAD = timedelta(seconds=300)
SCHEDULE_MAX_AHEAD = timedelta(days=35)


@dataclass(frozen=True)
class SendRequest:
    """A create request as the API received it (raw strings, Twilio parameter semantics)."""

    to: str | None
    from_: str | None = None
    messaging_service_sid: str | None = None
    body: str | None = None
    media_urls: Sequence[str] = ()
    status_callback: str | None = None
    validity_period: str | None = None
    send_at: str | None = None
    schedule_type: str | None = None
    smart_encoded: str | None = None
    direction: Direction = Direction.OUTBOUND_API
    #: An automatic STOP/START/HELP reply: it goes out even to a recipient who just opted out.
    keyword_reply: bool = False
    #: The request's parameters that `domain.send_options` reads, as given.
    options: Mapping[str, str] = field(default_factory=dict)


def content_hash(sender: str | None, recipient: str, body: str, media: Sequence[str] = ()) -> str:
    """Fingerprint of a message's content for duplicate detection; kept after redaction. The
    media URLs count, in order (two pictures with the same text are two contents); a text's
    fingerprint is the one it always had, so stored ones match new sends."""
    text = f"{sender or ''}\x1f{recipient}\x1f{body}"
    if media:
        text += "\x1e" + "\x1f".join(media)
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_bool(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"true", "1", "yes"}


def _parse_send_at(raw: str) -> datetime | None:
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _validity(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(21624, "The ValidityPeriod parameter must be a whole number of seconds.") from None
    if not 1 <= value <= MAX_VALIDITY_PERIOD:
        raise ApiError(21624, f"ValidityPeriod {value} is out of range: it must be between 1 and 36000 seconds.")
    return value


def check_media_urls(urls: Sequence[str]) -> None:
    """At most ten, each an http(s) URL (21623, 21620): a message's MediaUrl, sent or (from the
    simulator's handset) received; the console shows each as a link."""
    if len(urls) > MAX_MEDIA:
        raise ApiError(21623, f"Too many media files: {len(urls)} given, at most 10 allowed.")
    for url in urls:
        if not is_valid_http_url(url):
            raise ApiError(21620, f"The media URL {url!r} is not a valid http or https URL.")


def _check_content(req: SendRequest) -> str:
    if req.options and (problem := send_options.refusal(req.options)):
        raise ApiError(20422, problem)
    body = req.body or ""
    if not body and not req.media_urls:
        raise ApiError(21602, "Message body is required.")
    if character_count(body) > MAX_BODY_CHARS:
        raise ApiError(21617, "The concatenated message body exceeds the 1600 character limit.")
    check_media_urls(req.media_urls)
    if req.status_callback and not is_valid_http_url(req.status_callback):
        raise ApiError(21609, f"The StatusCallback URL {req.status_callback} is not a valid URL.")
    return body


def _recipient(req: SendRequest) -> str:
    if not req.to:
        raise ApiError(21604, "A 'To' phone number is required.")
    to = numbers.to_e164(req.to)
    if to is None:
        raise ApiError(21211, f"The 'To' number {req.to} is not a valid phone number.")
    return to


def _check_destination(conn: Connection, account_sid: str, to: str, account: Mapping[str, Any] | None) -> None:
    """21408 when the account's geo permissions leave out the country of `to`."""
    if account is None or account["sid"] != account_sid:
        account = get_account(conn, account_sid)
        if account is None:
            return  # no such account: the caller's own checks answer for it
    allowed = sendable_countries(conn, account)
    problem = geo.refusal(to, numbers.region_of(to), allowed) if allowed is not None else None
    if problem is not None:
        raise ApiError(21408, problem)


def _related(conn: Connection, a: str, b: str) -> bool:
    """True when one account is the other's parent (they may know each other's numbers)."""
    first, second = get_account(conn, a), get_account(conn, b)
    return bool(first and second and (first["owner_account_sid"] == b or second["owner_account_sid"] == a))


def _normalised_sender(raw_from: str, to: str) -> tuple[str, bool]:
    """(the From of a request as stored: E.164, a short code, or an alphanumeric sender ID;
    whether it is a number, which must then be one of the account's)."""
    raw = raw_from.strip()
    if numbers.is_alphanumeric_sender(raw) and not raw.startswith("+"):
        if numbers.region_of(to) in {"US", "CA"}:
            raise ApiError(21612, f"The 'To' number {to} cannot receive messages from an alphanumeric sender.")
        return raw, False
    sender = numbers.number_or_short_code(raw)
    if sender is None:
        raise ApiError(
            21212, f"The 'From' number {raw_from} is not a valid phone number, shortcode, or alphanumeric sender ID."
        )
    if sender == to:
        raise ApiError(21211, f"The 'To' number {to} is the same as the 'From' number.")
    return sender, True


def _check_owned(conn: Connection, account_sid: str, sender: str, to: str, owned: dict[str, Any] | None) -> None:
    """That `owned`, the record of the number `sender`, makes it a message-capable sender of
    this account."""
    if (
        owned is not None
        and owned["account_sid"] != account_sid
        and not _related(conn, owned["account_sid"], account_sid)
    ):
        owned = None  # another tenant's number: answer as if it did not exist
    if owned is None:
        raise ApiError(
            21606,
            f"The 'From' phone number {sender} is not a valid, SMS-capable inbound phone number or short code for your account.",
        )
    if owned["account_sid"] != account_sid:
        raise ApiError(
            21660, f"The 'From' phone number {sender} belongs to another account than the one in the request."
        )
    if not owned["sms_capable"]:
        raise ApiError(21606, f"The 'From' phone number {sender} is not SMS-capable.")
    if numbers.is_short_code(sender) and owned.get("iso_country") and numbers.region_of(to) != owned["iso_country"]:
        raise ApiError(21606, f"The short code {sender} can only send to numbers in {owned['iso_country']}.")


def _check_mms(sender: str, owned: dict[str, Any] | None) -> None:
    """21621 for media from a sender that cannot send MMS: a number without the capability (a
    short code has none here), or an alphanumeric sender (no record)."""
    if owned is None or not owned["mms_capable"]:
        raise ApiError(
            21621, f"The 'From' number {sender} has not been enabled for MMS, and the message carries media."
        )


def _schedule(req: SendRequest, now: datetime, service: dict[str, Any] | None) -> datetime | None:
    if not req.schedule_type and not req.send_at:
        return None
    if req.schedule_type and req.schedule_type != "fixed":
        raise ApiError(35126, f"ScheduleType {req.schedule_type!r} is not supported; use 'fixed'.")
    if service is None:
        raise ApiError(35118, "Scheduling a message requires a MessagingServiceSid.")
    if not req.send_at:
        raise ApiError(35111, "SendAt is required when ScheduleType is 'fixed'.")
    if not req.schedule_type:
        raise ApiError(35111, "ScheduleType must be 'fixed' when SendAt is given.")
    send_at = _parse_send_at(req.send_at)
    if send_at is None:
        raise ApiError(35114, f"SendAt {req.send_at!r} is not an ISO 8601 date-time with a time zone.")
    if send_at < now + SCHEDULE_MIN_AHEAD:
        raise ApiError(35115, "SendAt must be at least 300 seconds in the future.")
    if send_at > now + SCHEDULE_MAX_AHEAD:
        raise ApiError(35117, "SendAt must be at most 35 days in the future.")
    return send_at


def _check_queue(
    conn: Connection, sender: str, segments: int, pacing: PacingPolicy, gauge: QueueGauge | None, *, service: bool
) -> int | None:
    """A sender's queue holds at most ten hours of its traffic (Twilio's rule): past that a
    create from a number fails at once (21611) instead of waiting hours to go out; one through
    a Messaging Service is accepted, and fails with 30001 (queue overflow) when the dispatcher
    takes it: the code returned, to keep on the message (None: there is room)."""
    capacity = pacing.queue_capacity(sender)
    queued = gauge.queued(conn, sender) if gauge is not None else queued_segments(conn, sender)
    if queued + segments > capacity:
        if service:
            return 30001
        raise ApiError(
            21611,
            f"The queue of {sender} is full: it already holds {capacity} segments, ten hours of traffic at "
            f"{pacing.rate(sender):g} segments per second.",
        )
    return None


def _pool_sender(conn: Connection, service: dict[str, Any], to: str, *, media: bool) -> str:
    """A sender from the service's pool for `to` (21704: empty pool; 21703: none fits); one
    that can send MMS first when the message has `media`."""
    sid = service["sid"]
    sticky = service_store.last_sender_to(conn, sid, to) if service["sticky_sender"] else None
    alphas = [a["alpha_sender"] for a in service_store.list_alpha_senders(conn, sid)]
    sender = choose_sender(
        service_store.sender_numbers(conn, sid),
        to,
        sticky=sticky,
        alpha_senders=alphas,
        area_code_geomatch=bool(service["area_code_geomatch"]),
        media=media,
    )
    if sender is not None:
        return sender
    if service_store.pool_size(conn, sid) == 0:
        raise ApiError(21704, f"The Messaging Service {sid} has no senders in its pool.")
    raise ApiError(21703, f"No sender in the pool of Messaging Service {sid} can reach {to}.")


def _sender(
    conn: Connection,
    account_sid: str,
    req: SendRequest,
    to: str,
    service: dict[str, Any] | None,
    body: str,
    duplicates_since: datetime | None,
    now: datetime,
) -> tuple[str, bool, dict[str, Any] | None]:
    """(the sender, after checking the account may send from it; whether an opt-out blocks
    it, or its Messaging Service, from `to`; the newest message with the same content created
    since `duplicates_since`, when that is given). A number's record, its opt-out and the
    duplicate are one lookup: the path of nearly every send."""
    service_sid = service["sid"] if service else None
    sender, is_number = _normalised_sender(req.from_, to) if req.from_ else (None, False)
    if sender is not None and is_number:
        found = lookup_sender(
            conn,
            account_sid=account_sid,
            sender=sender,
            recipient=to,
            service_sid=service_sid,
            content_hash=content_hash(sender, to, body, req.media_urls) if duplicates_since is not None else None,
            since=duplicates_since or now,
        )
        # An opt-out from a number in a Messaging Service covers the whole service, however
        # the message names its sender: the lookup follows the number's service.
        _check_owned(conn, account_sid, sender, to, found.number)
        if req.media_urls:
            _check_mms(sender, found.number)
        return sender, found.opted_out, found.duplicate
    if sender is None:
        assert service is not None
        sender = _pool_sender(conn, service, to, media=bool(req.media_urls))
    elif req.media_urls:
        _check_mms(sender, None)  # an alphanumeric sender
    opted_out = find_opt_out(conn, account_sid=account_sid, sender=sender, recipient=to, service_sid=service_sid)
    duplicate = None
    if duplicates_since is not None:
        duplicate = find_recent_duplicate(
            conn,
            account_sid=account_sid,
            to=to,
            content_hash=content_hash(sender, to, body, req.media_urls),
            since=duplicates_since,
        )
    return sender, opted_out is not None, duplicate


def _service_named_in_from(req: SendRequest) -> SendRequest:
    """Twilio takes a Messaging Service's SID in From as if it came as MessagingServiceSid:
    integrations with only a "from" setting send through a service that way."""
    named = req.from_.strip() if req.from_ else ""
    if not is_sid(named, Prefix.SERVICE):
        return req
    if req.messaging_service_sid and req.messaging_service_sid != named:
        raise ApiError(
            21606,
            f"From names the Messaging Service {named}, and MessagingServiceSid another: give one service.",
        )
    return replace(req, from_=None, messaging_service_sid=named)


def prepare_message(
    conn: Connection,
    account_sid: str,
    req: SendRequest,
    now: datetime,
    *,
    pacing: PacingPolicy | None = None,
    queue_gauge: QueueGauge | None = None,
    account: Mapping[str, Any] | None = None,
    duplicates_since: datetime | None = None,
) -> NewMessage:
    """Validate `req` for `account_sid`; return the rows to commit, or raise ApiError.

    `queue_gauge`: where a busy caller (the API) reads queue lengths; without it, each call
    adds up the sender's queue. The caller tells the gauge once the message is committed.
    `account`: the account's row, when the caller has read it already (the API has).
    `duplicates_since`: look for a message with the same content created since then, and keep
    it in the result's `duplicate_of` (the API's duplicate warning; `send_guard.guard`)."""
    req = _service_named_in_from(req)
    to = _recipient(req)
    if not req.from_ and not req.messaging_service_sid:
        raise ApiError(21603, "A 'From' phone number or a MessagingServiceSid is required.")
    _check_destination(conn, account_sid, to, account)
    body = _check_content(req)
    validity = _validity(req.validity_period)

    service: dict[str, Any] | None = None
    if req.messaging_service_sid:
        if not is_sid(req.messaging_service_sid, Prefix.SERVICE):
            raise ApiError(21705, f"The MessagingServiceSid {req.messaging_service_sid} is not valid.")
        service = service_store.get_service(conn, req.messaging_service_sid, account_sid=account_sid)
        if service is None:
            raise ApiError(21701, f"The Messaging Service {req.messaging_service_sid} does not exist on this account.")
    send_at = _schedule(req, now, service)

    smart = _parse_bool(req.smart_encoded) or bool(service and service["smart_encoding"] and req.smart_encoded is None)
    plan = plan_segments(body, smart_encoding=smart)
    sender, opted_out, duplicate = _sender(conn, account_sid, req, to, service, plan.body, duplicates_since, now)
    if opted_out and not req.keyword_reply:
        raise ApiError(21610, f"Attempt to send to unsubscribed recipient {to}.")

    fail_code = (
        # A scheduled message joins its sender's queue at its SendAt, not now.
        _check_queue(
            conn, sender, plan.num_segments, pacing or PacingPolicy(), queue_gauge, service=service is not None
        )
        if send_at is None
        else None
    )
    sid = new_sid(Prefix.MMS if req.media_urls else Prefix.SMS)
    if send_at is not None:
        status = MessageStatus.SCHEDULED
    elif service is not None:
        status = MessageStatus.ACCEPTED
    else:
        status = MessageStatus.QUEUED
    if validity is None and service is not None:
        validity = service["validity_period"]
    row: dict[str, Any] = {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": service["sid"] if service else None,
        "direction": str(req.direction),
        "from_": sender,
        "to": to,
        "body": plan.body,
        "status": str(status),
        "encoding": plan.encoding,
        "num_segments": plan.num_segments,
        "num_media": len(req.media_urls),
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "status_callback": req.status_callback or None,
        "validity_period": validity,
        "send_at": send_at,
        "fail_code": fail_code,
        "smart_encoded": smart,
        "content_hash": content_hash(sender, to, plan.body, req.media_urls),
        "attempts": 0,
        "next_attempt_at": send_at or now,
        "claimed_by": None,
        "claimed_until": None,
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
    }
    media_rows = [
        {
            "sid": new_sid(Prefix.MEDIA),
            "account_sid": account_sid,
            "message_sid": sid,
            "position": i,
            "url": url,
            "content_type": mimetypes.guess_type(url.split("?")[0])[0],
            "date_created": now,
            "date_updated": now,
        }
        for i, url in enumerate(req.media_urls)
    ]
    event = {
        "message_sid": sid,
        "account_sid": account_sid,
        "at": now,
        "kind": "created",
        "status": str(status),
        "error_code": None,
        "detail": {
            "num_segments": plan.num_segments,
            "encoding": plan.encoding,
            "num_media": len(req.media_urls),
            **({"send_at": send_at.isoformat()} if send_at else {}),
            **({"validity_period": validity} if validity else {}),
        },
    }
    new = NewMessage(message=row, media=media_rows, events=[event])
    if duplicates_since is not None:
        new.duplicates_since, new.duplicate_of = duplicates_since, duplicate
    return new
