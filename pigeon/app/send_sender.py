"""Who sends a message: the From of a create request, or a sender from its Messaging Service's
pool; and the checks that the account may send from it.

`resolve_sender` answers with the sender, whether an opt-out blocks it from the recipient,
and the newest message with the same content (for the API's duplicate warning), or raises
the Twilio error: a From that is no number, short code or alphanumeric sender ID (21212),
an alphanumeric sender to the US or Canada (21612), a number that is not the account's
(21606, 21660), not SMS-capable (21606) or, for media, not MMS-capable (21621), a short
code out of its country (21606), an empty pool or none that fits (21704, 21703).

From a pool, the sender is the first of `sender_choices` whose queue has room (`has_room`,
asked of the first choice alone unless its queue is full); when none has, the first choice,
and the caller fails the message with 30001. `read_pool` and `pool_sender` are that choice
alone, which a scheduled message makes again at its SendAt (`pigeon.app.scheduled_senders`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.send_request import SendRequest, content_hash
from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.senders import sender_choices
from pigeon.store import services as service_store
from pigeon.store.accounts import get_account
from pigeon.store.messages import find_recent_duplicate
from pigeon.store.optouts import find_opt_out
from pigeon.store.send_lookup import lookup_sender
from pigeon.store.settings import content_key


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


@dataclass(frozen=True)
class Pool:
    """A Messaging Service's sender pool as it is now: what `pool_sender` chooses from."""

    service: Mapping[str, Any]
    numbers: list[dict[str, Any]]  # its SMS-capable numbers and short codes, oldest first
    alpha_senders: list[str]


def read_pool(conn: Connection, service: Mapping[str, Any]) -> Pool:
    """The pool of `service` (its row), read once for as many choices as its caller makes."""
    sid = service["sid"]
    alphas = [a["alpha_sender"] for a in service_store.list_alpha_senders(conn, sid)]
    return Pool(service, service_store.sender_numbers(conn, sid), alphas)


def pool_sender(
    conn: Connection,
    pool: Pool,
    to: str,
    *,
    media: bool,
    has_room: Callable[[str], bool] | None,
    excluding: str | None = None,
) -> str:
    """A sender from the pool for `to` (21704: empty pool; 21703: none fits); one that can
    send MMS first when the message has `media`; past a full queue, the next one that is as
    good (`has_room`; None: no queue to mind, as for a scheduled message). The sticky sender
    is the one the service last used for `to`, leaving out the message `excluding` (a
    scheduled message choosing again at its SendAt, whose own sender is the one chosen at
    its create)."""
    service = pool.service
    sid = service["sid"]
    sticky = (
        service_store.last_sender_to(conn, sid, to, account_sid=service["account_sid"], excluding=excluding)
        if service["sticky_sender"]
        else None
    )
    choices = sender_choices(
        pool.numbers,
        to,
        sticky=sticky,
        alpha_senders=pool.alpha_senders,
        area_code_geomatch=bool(service["area_code_geomatch"]),
        media=media,
    )
    if choices:
        with_room = (s for s in choices if has_room is None or has_room(s))
        return next(with_room, choices[0])
    if service_store.pool_size(conn, sid) == 0:
        raise ApiError(21704, f"The Messaging Service {sid} has no senders in its pool.")
    raise ApiError(21703, f"No sender in the pool of Messaging Service {sid} can reach {to}.")


def resolve_sender(
    conn: Connection,
    account_sid: str,
    req: SendRequest,
    to: str,
    service: dict[str, Any] | None,
    body: str,
    duplicates_since: datetime | None,
    now: datetime,
    has_room: Callable[[str], bool] | None = None,
) -> tuple[str, bool, dict[str, Any] | None]:
    """(the sender, after checking the account may send from it; whether an opt-out blocks
    it, or its Messaging Service, from `to`; the newest message with the same content created
    since `duplicates_since`, when that is given). A number's record, its opt-out and the
    duplicate are one lookup: the path of nearly every send. `has_room`: whether a sender's
    queue takes the message, for choosing from a pool."""
    service_sid = service["sid"] if service else None
    sender, is_number = _normalised_sender(req.from_, to) if req.from_ else (None, False)
    if sender is not None and is_number:
        found = lookup_sender(
            conn,
            account_sid=account_sid,
            sender=sender,
            recipient=to,
            service_sid=service_sid,
            content_hash=(
                content_hash(sender, to, body, req.media_urls, key=content_key(conn))
                if duplicates_since is not None
                else None
            ),
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
        sender = pool_sender(conn, read_pool(conn, service), to, media=bool(req.media_urls), has_room=has_room)
    elif req.media_urls:
        _check_mms(sender, None)  # an alphanumeric sender
    opted_out = find_opt_out(conn, account_sid=account_sid, sender=sender, recipient=to, service_sid=service_sid)
    duplicate = None
    if duplicates_since is not None:
        duplicate = find_recent_duplicate(
            conn,
            account_sid=account_sid,
            to=to,
            content_hash=content_hash(sender, to, body, req.media_urls, key=content_key(conn)),
            since=duplicates_since,
        )
    return sender, opted_out is not None, duplicate
