"""Finished webhook deliveries and their attempts, removed once older than the retention.

Every status callback, inbound webhook and Event Streams delivery leaves a row in
webhook_deliveries and one in webhook_attempts per try: about six rows for each message sent
with a StatusCallback; kept for ever, they would come to outweigh the messages. A delivery
that is finished (delivered, or failed for good) and has not changed since the cut-off is
removed with its attempts. What the debugger needs of it for longer is in the message's
timeline (each callback's outcome, status code and time) and, for a failure, in its alert.
Unfinished deliveries are never removed, however old.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import webhook_attempts, webhook_deliveries
from pigeon.store.webhook_lines import FINISHED

d = webhook_deliveries.c
a = webhook_attempts.c

# Read through the (status, next_attempt_at) index: a finished delivery's next_attempt_at is
# the time its last attempt was due, so never later than its date_updated.
_DOOMED = (
    sa.select(d.id)
    .where(
        d.status.in_(FINISHED),
        d.next_attempt_at < sa.bindparam("before"),
        d.date_updated < sa.bindparam("before"),
    )
    .limit(sa.bindparam("limit"))
)


def purge_finished(conn: Connection, *, before: datetime, limit: int, progress: dict[str, Any] | None = None) -> int:
    """Remove at most `limit` deliveries finished before `before`, with their attempts; returns
    how many. (Two processes purging at once may pick the same rows: the second removes none.)"""
    ids = list(conn.execute(_DOOMED, {"before": before, "limit": limit}).scalars())
    if not ids:
        return 0
    conn.execute(webhook_attempts.delete().where(a.delivery_id.in_(ids)))
    conn.execute(webhook_deliveries.delete().where(d.id.in_(ids)))
    return len(ids)
