"""Failing, many at once, messages that no carrier has had: what the claim's checks and a
number leaving its account share.

`fail_many` moves those of a list of messages still in the given statuses to `failed` with
one guarded UPDATE (``WHERE status IN (…)``, `store.message_batch`: a message a dispatcher
moved on meanwhile is left to it), and gives each one it moved what the dispatcher's other
failures give (30002, 30036): a timeline entry of the caller's kind with the error code and a
detail, an alert, its status callback and its Event Streams event, all written with one
statement each. Its lease is dropped. Nothing went to a carrier, so it has no price and
counts in no usage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callbacks
from pigeon.domain.status import MessageStatus
from pigeon.store import alerts as alert_store
from pigeon.store import message_batch, sender_queue

Row = dict[str, Any]

#: What a dispatcher's claim holds: a message not yet sent, or left `sending` by a dead dispatcher.
CLAIMED = (*sender_queue.NOT_YET_SENT, MessageStatus.SENDING)


def fail_many(
    conn: Connection,
    sids: Sequence[str],
    *,
    now: datetime,
    code: int,
    kind: str,
    detail: Callable[[Row], dict[str, Any]],
    text: Callable[[Row], str],
    from_statuses: Iterable[MessageStatus] = sender_queue.NOT_YET_SENT,
) -> list[Row]:
    """Fail the messages of `sids` still in `from_statuses` with `code`: a `kind` timeline
    entry with ``detail(row)``, an alert saying ``text(row)``, their callbacks and events.
    Returns the rows failed (as updated), in the order of `sids`."""
    moved = message_batch.transition_many(
        conn,
        sids,
        MessageStatus.FAILED,
        at=now,
        error_code=code,
        from_statuses=from_statuses,
        claimed_by=None,
        claimed_until=None,
        offered_to=None,
        fail_code=None,
    )
    rows = [moved[sid] for sid in sids if sid in moved]
    message_batch.add_events(
        conn,
        [
            message_batch.event(
                message_sid=r["sid"],
                account_sid=r["account_sid"],
                at=now,
                kind=kind,
                status=str(MessageStatus.FAILED),
                error_code=code,
                detail=detail(r),
            )
            for r in rows
        ],
    )
    alert_store.add_alerts(
        conn,
        [
            alert_store.alert_row(
                account_sid=r["account_sid"], error_code=code, text=text(r), at=now, resource_sid=r["sid"]
            )
            for r in rows
        ],
    )
    enqueue_status_callbacks(conn, [(r, None) for r in rows], now=now)
    return rows
