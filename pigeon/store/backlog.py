"""How far behind the pipeline is, for GET /metrics: what waits to go out, and since when the
most overdue of it has been due.

Every figure is read off a (status, next_attempt_at) index, of messages or of
webhook_deliveries: the count of one status's range, and its first entry. A scrape costs a
few index reads however old the store is; the counts grow with the backlog, which is what
they measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import MessageStatus
from pigeon.store.tables import messages, webhook_deliveries
from pigeon.store.webhook_lines import PENDING, WAITING

m = messages.c
d = webhook_deliveries.c

#: Messages that wait to go out, and those whose due time says when they are late (a scheduled
#: message is late once its SendAt has passed).
MESSAGE_STATUSES = (str(MessageStatus.ACCEPTED), str(MessageStatus.QUEUED), str(MessageStatus.SENDING))
_MESSAGES_DUE = (str(MessageStatus.ACCEPTED), str(MessageStatus.QUEUED), str(MessageStatus.SCHEDULED))
#: Webhook deliveries not made yet: pending (due, in flight, or backing off) and waiting (behind
#: an earlier one of the same message and URL).
DELIVERY_STATUSES = (PENDING, WAITING)


@dataclass(frozen=True)
class Backlog:
    messages: dict[str, int]  # status -> messages
    #: Seconds since the longest-due accepted or queued message has been due (0: none is due).
    message_lag: float
    deliveries: dict[str, int]  # status -> deliveries
    #: Seconds since the longest-due pending delivery has been due, in flight included.
    delivery_lag: float


def _count(conn: Connection, column: sa.ColumnElement[str], status: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(column == status)).scalar_one())


def _first_due(
    conn: Connection, column: sa.ColumnElement[str], due: sa.ColumnElement[datetime], status: str
) -> datetime | None:
    found = conn.execute(sa.select(due).where(column == status).order_by(due).limit(1)).scalar_one_or_none()
    return found if isinstance(found, datetime) else None


def _lag(now: datetime, firsts: list[datetime | None]) -> float:
    due = [f for f in firsts if f is not None and f <= now]
    return max((now - min(due)).total_seconds(), 0.0) if due else 0.0


def backlog(conn: Connection, *, now: datetime) -> Backlog:
    return Backlog(
        messages={s: _count(conn, m.status, s) for s in MESSAGE_STATUSES},
        message_lag=_lag(now, [_first_due(conn, m.status, m.next_attempt_at, s) for s in _MESSAGES_DUE]),
        deliveries={s: _count(conn, d.status, s) for s in DELIVERY_STATUSES},
        delivery_lag=_lag(now, [_first_due(conn, d.status, d.next_attempt_at, PENDING)]),
    )
