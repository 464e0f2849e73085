"""Reading and changing existing messages: fetch, list, redact, cancel, delete, media, timeline,
feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.accounts import standing
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.redaction import forget_text
from pigeon.domain.errors import ApiError, InvalidTransition
from pigeon.domain.status import IN_FLIGHT, MessageStatus
from pigeon.store import accounts as account_store
from pigeon.store import messages as store
from pigeon.store.retention import remove_messages

Row = dict[str, Any]


def not_found(path: str) -> ApiError:
    return ApiError(20404, f"The requested resource {path} was not found", status=404)


def fetch(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    row = store.get_message(conn, sid, account_sid=account_sid)
    if row is None:
        raise not_found(path)
    return row


def fetch_locked(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    """The message as `fetch` finds it, its row held until the transaction ends (PostgreSQL).
    What is decided from its status (delete, redact) or adds to its timeline (feedback) then
    cannot interleave with a receipt, an erasure or the retention removing it; without the
    lock a row written in between would be left naming a message that is gone."""
    fetch(conn, account_sid, sid, path)  # another account's message is not locked, only 404
    store.lock_message(conn, sid)
    return fetch(conn, account_sid, sid, path)  # as it is now that no one else changes it


def redact(conn: Connection, account_sid: str, sid: str, path: str, now: datetime) -> Row:
    """Erase a message's text, and its content hash: the message's and the request log's of
    the request that made it (keyed, but a text is best not fingerprinted once it is gone;
    from an unkeyed one a short code was found by trying them all), and every other copy
    (`forget_text`). Refused while the message may still go out: the text is what the
    carrier would be sent."""
    row = fetch_locked(conn, account_sid, sid, path)
    status = MessageStatus(row["status"])
    if status in IN_FLIGHT or status is MessageStatus.SCHEDULED:
        raise ApiError(
            20009,
            f"Message {sid} is {status}; its body can only be redacted once it has been sent or has failed.",
        )
    if row["body"] == "" and row["content_hash"] is None:
        return row
    store.redact_message(conn, sid, content_hash=row["content_hash"], now=now)
    forget_text(conn, row)
    store.add_event(conn, message_sid=sid, account_sid=account_sid, at=now, kind="redacted")
    return fetch(conn, account_sid, sid, path)


def cancel(conn: Connection, account_sid: str, sid: str, path: str, now: datetime) -> Row:
    """Cancel a scheduled message. Canceled is a change after the status the message was
    created with, so its status callback is queued in the same transaction, as every other
    change's is (no Event Streams event: there is no canceled event type)."""
    row = fetch(conn, account_sid, sid, path)
    try:
        updated = store.transition(
            conn,
            sid,
            MessageStatus.CANCELED,
            at=now,
            kind="canceled",
            from_statuses=[MessageStatus.SCHEDULED],
            detail={"by": "api"},
        )
    except InvalidTransition:
        raise ApiError(30409, f"Message {sid} is {row['status']}; only a scheduled message can be canceled.") from None
    enqueue_status_callback(conn, updated, now=now)
    return updated


def delete(conn: Connection, account_sid: str, sid: str, path: str) -> None:
    row = fetch_locked(conn, account_sid, sid, path)
    if MessageStatus(row["status"]) in IN_FLIGHT:
        raise ApiError(20009, f"Message {sid} is {row['status']}; it can be deleted once it reaches a final status.")
    remove_messages(conn, [sid])


def timeline(conn: Connection, account_sid: str, sid: str, path: str) -> list[Row]:
    fetch(conn, account_sid, sid, path)
    return store.list_events(conn, sid, account_sid=account_sid)


#: Message Feedback's outcomes (Twilio's `message_feedback_enum_outcome`).
FEEDBACK_OUTCOMES = ("confirmed", "unconfirmed")


def give_feedback(conn: Connection, account_sid: str, sid: str, path: str, outcome: str | None, now: datetime) -> Row:
    """Keep what the application learnt of a message it sent (Twilio's Message Feedback: the
    recipient used the one-time code, followed the link): a `feedback` timeline entry each time,
    so the doctor and the log show it. Returns the feedback as the resource shows it: its
    latest outcome, created at the first. Without an outcome, `confirmed`: what reporting
    feedback is for."""
    row = fetch_locked(conn, account_sid, sid, path)
    value = "confirmed" if outcome is None or outcome == "" else outcome
    if value not in FEEDBACK_OUTCOMES:
        raise ApiError(20422, f"Outcome must be 'confirmed' or 'unconfirmed', not {value!r}.")
    if row["direction"] == "inbound":
        raise ApiError(20422, f"Message {sid} was received, not sent: feedback is for the messages you send.")
    store.add_event(conn, message_sid=sid, account_sid=account_sid, at=now, kind="feedback", detail={"outcome": value})
    first = next(e for e in store.list_events(conn, sid, account_sid=account_sid) if e["kind"] == "feedback")
    return {
        "account_sid": account_sid,
        "message_sid": sid,
        "outcome": value,
        "date_created": first["at"],
        "date_updated": now,
    }


def media_list(
    conn: Connection,
    account_sid: str,
    sid: str,
    path: str,
    *,
    offset: int,
    limit: int,
    created_on: tuple[datetime, datetime] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> list[Row]:
    """A page of the message's media, in their order, created within the bounds given
    (`store.list_media`)."""
    fetch(conn, account_sid, sid, path)
    return store.list_media(
        conn,
        sid,
        offset=offset,
        limit=limit,
        created_on=created_on,
        created_after=created_after,
        created_before=created_before,
    )


def _message_and_media(conn: Connection, account_sid: str, sid: str, media_sid: str, path: str) -> tuple[Row, Row]:
    message = fetch(conn, account_sid, sid, path)
    row = store.get_media(conn, sid, media_sid)
    if row is None:
        raise not_found(path)
    return message, row


def media_fetch(conn: Connection, account_sid: str, sid: str, media_sid: str, path: str) -> Row:
    return _message_and_media(conn, account_sid, sid, media_sid, path)[1]


def media_content(conn: Connection, account_sid: str, sid: str, media_sid: str, path: str) -> Row:
    """The media a content URL names, for a request without credentials: media URLs are public,
    as on Twilio, the unguessable SIDs being the key. Found only when the account exists and
    is not closed, holds the message, and the message the media; any miss is the same 404,
    which tells nothing of which part of the URL was wrong. A suspended account's media stay
    reachable: its numbers still take texts, whose webhooks carry these URLs."""
    account = account_store.get_account(conn, account_sid)
    if account is None or standing(account) == "closed":
        raise not_found(path)
    return media_fetch(conn, account_sid, sid, media_sid, path)


def media_delete(conn: Connection, account_sid: str, sid: str, media_sid: str, path: str) -> None:
    """Remove one media record. Refused while the message may still go out, as redaction is:
    the media are what the carrier would be sent (or their links, `domain.mms`)."""
    message, _ = _message_and_media(conn, account_sid, sid, media_sid, path)
    status = MessageStatus(message["status"])
    if status in IN_FLIGHT or status is MessageStatus.SCHEDULED:
        raise ApiError(
            20009, f"Message {sid} is {status}; its media can be deleted once it has been sent or has failed."
        )
    store.delete_media(conn, media_sid)
