"""What the debugger adds around an API send: Idempotency-Key replays, duplicate warnings,
and the numbers and content hash the request log keeps of a send (never its body).

- `find_replay`: the message an earlier request made with the same key and parameters, or
  20409 when the key was used with other parameters.
- `guard`: attaches the key row to a new message (written in the same transaction, so the
  key's primary key decides a race), or, without a key, a duplicate-warning alert when the
  same content went to the same recipient a few seconds ago.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.send_request import SendRequest, content_hash
from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.idempotency import DUPLICATE_WARNING, DUPLICATE_WINDOW, KEY_TTL
from pigeon.store.alerts import alert_row
from pigeon.store.idempotency import get_key, key_row
from pigeon.store.messages import NewMessage, find_recent_duplicate, get_message

Row = dict[str, Any]
#: (to, from, content hash) of a send, as the request log keeps it.
SendSummary = tuple[str | None, str | None, str | None]


def find_replay(conn: Connection, account_sid: str, key: str, request_hash: str, now: datetime) -> Row | None:
    """The message made under `key` within its 24 hours, if the parameters are the same;
    None when the key is unused (or expired); 20409 when it was used with other parameters."""
    used = get_key(conn, account_sid, key)
    if used is None or used["date_created"] <= now - KEY_TTL:
        return None
    if used["request_hash"] != request_hash:
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
    if earlier is None:
        return
    seconds = max((now - earlier["date_created"]).total_seconds(), 0.0)
    new.alerts.append(
        alert_row(
            account_sid=msg["account_sid"],
            error_code=DUPLICATE_WARNING,
            log_level="warning",
            resource_sid=msg["sid"],
            at=now,
            text=(
                f"Possible duplicate: message {msg['sid']} has the same sender, recipient and body as "
                f"{earlier['sid']}, created {seconds:.1f} s earlier, and neither request carried an "
                f"Idempotency-Key. Both were sent. Run `pigeon doctor duplicates --to {msg['to']}` to see "
                "the requests behind them."
            ),
            request_method="POST",
            request_url=path,
            request_variables={"To": msg["to"], "From": msg["from_"], "DuplicateOf": earlier["sid"]},
        )
    )


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
    fingerprint = content_hash(sender, to, req.body or "", req.media_urls, key=key) if to and key else None
    return to, sender, fingerprint
