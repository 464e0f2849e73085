"""What the debugger adds around an API send: Idempotency-Key replays, duplicate warnings,
and the numbers and content hash the request log keeps of a send (never its body).

- `find_replay`: the message an earlier request made with the same key and parameters, or
  20409 when the key was used with other parameters.
- `guard`: attaches the key row to a new message (written in the same transaction, so the
  key's primary key decides a race), or, without a key, a duplicate-warning alert when the
  same content went to the same recipient a few seconds ago.
- `late_duplicates`: the same warning for the sends of a batch being written that `guard`
  could not see: two identical requests at the same moment are each validated before the
  other commits. Run in the batch's transaction (`pigeon.app.accept_batch`).

A warning says what each request carried: a retry that dropped the earlier request's
Idempotency-Key is told so, as that is why it was not taken as a retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.send_request import SendRequest, content_hash
from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.events import API_VERSION
from pigeon.domain.idempotency import DUPLICATE_WARNING, DUPLICATE_WINDOW, KEY_TTL, same_request
from pigeon.domain.urls import ascii_url
from pigeon.store.alerts import alert_row
from pigeon.store.idempotency import get_key, key_of_message, key_row
from pigeon.store.messages import NewMessage, find_recent_duplicate, get_message, recent_contents
from pigeon.store.settings import content_key

Row = dict[str, Any]
#: (to, from, content hash) of a send, as the request log keeps it.
SendSummary = tuple[str | None, str | None, str | None]


def find_replay(
    conn: Connection, account_sid: str, key: str, fields: Sequence[tuple[str, str]], now: datetime
) -> Row | None:
    """The message made under `key` within its 24 hours, if the parameters (`fields`, the
    request's form) are the same; None when the key is unused (or expired); 20409 when it was
    used with other parameters. After the message was redacted its request's fingerprint is
    gone, and a replay of the key answers the message, redacted (`same_request`)."""
    used = get_key(conn, account_sid, key)
    if used is None or used["date_created"] <= now - KEY_TTL:
        return None
    if not same_request(used["request_hash"], fields, key=content_key(conn)):
        raise ApiError(
            20409,
            f"The Idempotency-Key {key!r} was already used with different parameters for message "
            f"{used['message_sid']}. Use a new key for a new message.",
        )
    message = get_message(conn, used["message_sid"], account_sid=account_sid)
    if message is None:
        raise ApiError(
            20409,
            f"The message {used['message_sid']} created with Idempotency-Key {key!r} has been deleted; "
            "use a new key to send again.",
        )
    return message


def guard(
    conn: Connection,
    new: NewMessage,
    *,
    key: str | None,
    request_hash: str | None,
    now: datetime,
    path: str,
    window: timedelta = DUPLICATE_WINDOW,
) -> None:
    """Attach the key row to `new`; or, without a key, a warning if it repeats a message
    created within `window` (same account, recipient, sender and body)."""
    msg = new.message
    if key is not None and request_hash is not None:
        new.idempotency = key_row(
            account_sid=msg["account_sid"], key=key, request_hash=request_hash, message_sid=msg["sid"], at=now
        )
        return
    if window <= timedelta(0) or not msg.get("content_hash"):
        return
    since = now - window
    if new.duplicates_since == since:  # the send looked already, with its other lookups
        earlier = new.duplicate_of
    else:
        earlier = find_recent_duplicate(
            conn, account_sid=msg["account_sid"], to=msg["to"], content_hash=msg["content_hash"], since=since
        )
        new.duplicates_since, new.duplicate_of = since, earlier
    if earlier is None:
        return
    earlier_key = key_of_message(conn, msg["account_sid"], earlier["sid"], earlier["date_created"])
    new.alerts.append(duplicate_alert(msg, earlier, earlier_key=earlier_key, path=path))


def duplicate_alert(msg: Row, earlier: Row, *, earlier_key: str | None, path: str | None = None) -> Row:
    """The warning (79001) that `msg`, sent without an Idempotency-Key, repeats `earlier`
    (sid, date_created), whose request carried `earlier_key` (or none)."""
    seconds = max((msg["date_created"] - earlier["date_created"]).total_seconds(), 0.0)
    if earlier_key is None:
        why = ", and neither request carried an Idempotency-Key. Both were sent."
    else:
        why = (
            f". The earlier request carried the Idempotency-Key {earlier_key!r} and this one none, so it was not "
            "taken as a retry of it: both were sent. A retry must repeat the key."
        )
    return alert_row(
        account_sid=msg["account_sid"],
        error_code=DUPLICATE_WARNING,
        log_level="warning",
        resource_sid=msg["sid"],
        at=msg["date_created"],
        text=(
            f"Possible duplicate: message {msg['sid']} has the same sender, recipient and body as "
            f"{earlier['sid']}, created {seconds:.1f} s earlier{why} Run "
            f"`pigeon doctor duplicates --to {msg['to']}` to see the requests behind them."
        ),
        request_method="POST",
        request_url=path or f"/{API_VERSION}/Accounts/{msg['account_sid']}/Messages.json",
        request_variables={"To": msg["to"], "From": msg["from_"], "DuplicateOf": earlier["sid"]},
    )


def late_duplicates(conn: Connection, batch: Sequence[NewMessage]) -> list[Row]:
    """Warnings for the sends of `batch` (before it is written, in its transaction) that
    repeat a message `guard` did not see when it looked: one earlier in the batch, or one
    committed since (two identical requests at the same moment are each validated before the
    other commits). Only sends that looked and found none are checked (no Idempotency-Key,
    the warning on); the store is asked once per account with such sends, none for a batch
    without any. On SQLite the batches' transactions take turns, so nothing slips through; on
    PostgreSQL two batches committing at the same instant can still each miss the other."""
    unseen: dict[str, list[tuple[NewMessage, datetime]]] = {}  # by account
    latest: dict[tuple[str, str, str], NewMessage] = {}  # the batch's newest row of a content
    alerts: list[Row] = []
    for new in batch:
        msg = new.message
        if not msg.get("content_hash"):
            continue
        content = (msg["account_sid"], msg["to"], msg["content_hash"])
        since = new.duplicates_since
        if since is not None and new.duplicate_of is None and new.idempotency is None:
            mate = latest.get(content)
            if mate is not None and mate.message["date_created"] >= since:
                key = mate.idempotency["key"] if mate.idempotency else None
                alerts.append(duplicate_alert(msg, mate.message, earlier_key=key))
            else:
                unseen.setdefault(msg["account_sid"], []).append((new, since))
        latest[content] = new
    for account_sid, sends in unseen.items():
        found = recent_contents(
            conn,
            account_sid=account_sid,
            tos=sorted({n.message["to"] for n, _ in sends}),
            content_hashes=sorted({n.message["content_hash"] for n, _ in sends}),
            since=min(since for _, since in sends),
        )
        newest = {(r["to"], r["content_hash"]): r for r in found}  # oldest first: the last stays
        for new, since in sends:
            msg = new.message
            earlier = newest.get((msg["to"], msg["content_hash"]))
            if earlier is not None and earlier["date_created"] >= since:
                key = key_of_message(conn, account_sid, earlier["sid"], earlier["date_created"])
                alerts.append(duplicate_alert(msg, earlier, earlier_key=key))
    return alerts


def summary_of(message: Row) -> SendSummary:
    return message["to"], message["from_"], message["content_hash"]


def summary_of_request(req: SendRequest, key: bytes | None) -> SendSummary:
    """Best effort for a refused send: the numbers normalised where they parse, and the
    content hash as the message would have had it (when its sender is known, and the content
    key, `key`, is: None until the process has read it from the store)."""
    to = (numbers.to_e164(req.to) or req.to.strip()) if req.to else None
    sender = req.from_.strip() if req.from_ else None
    if sender and not numbers.is_short_code(sender) and not numbers.is_alphanumeric_sender(sender):
        sender = numbers.to_e164(sender) or sender
    media = [ascii_url(url) for url in req.media_urls]  # as `prepare_message` keeps them
    fingerprint = content_hash(sender, to, req.body or "", media, key=key) if to and key else None
    return to, sender, fingerprint
