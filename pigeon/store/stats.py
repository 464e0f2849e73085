"""Aggregates for the console's overview: messages per status over time, queue depth per sender.

Both read through the (account_sid, date_created) and (status, …) indexes, and group in the
database: the overview never loads message rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import Direction
from pigeon.store.dispatch import WAITING
from pigeon.store.tables import messages

m = messages.c

Granularity = Literal["hour", "day"]

_OUTBOUND = (str(Direction.OUTBOUND_API), str(Direction.OUTBOUND_REPLY), str(Direction.OUTBOUND_CALL))
_SQLITE_FORMAT = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}
_PG_FORMAT = {"hour": 'YYYY-MM-DD"T"HH24', "day": "YYYY-MM-DD"}


def _bucket(conn: Connection, granularity: Granularity) -> sa.ColumnElement[str]:
    """The UTC hour ('2026-01-15T12') or day ('2026-01-15') a message was created in."""
    if conn.dialect.name == "sqlite":
        # SQLite keeps naive UTC text (see tables.UTCDateTime), which strftime reads as UTC.
        return sa.func.strftime(_SQLITE_FORMAT[granularity], m.date_created)
    return sa.func.to_char(sa.func.timezone("UTC", m.date_created), _PG_FORMAT[granularity])


def status_counts(
    conn: Connection,
    account_sid: str,
    *,
    since: datetime,
    until: datetime,
    statuses: Sequence[str],
    granularity: Granularity = "hour",
) -> list[tuple[str, str, int]]:
    """(bucket, status, count) of the account's outbound messages created in [since, until),
    by their current status, for the given statuses only."""
    bucket = _bucket(conn, granularity).label("bucket")
    q = (
        sa.select(bucket, m.status, sa.func.count().label("n"))
        .where(
            m.account_sid == account_sid,
            m.date_created >= since,
            m.date_created < until,
            m.direction.in_(_OUTBOUND),
            m.status.in_(list(statuses)),
        )
        .group_by(bucket, m.status)
        .order_by(bucket)
    )
    return [(str(r.bucket), str(r.status), int(r.n)) for r in conn.execute(q)]


def queue_depth(conn: Connection, account_sid: str) -> list[dict[str, Any]]:
    """Per sender: messages and segments waiting to go out (queued, accepted, sending), and
    when the oldest of them was created; deepest queue first."""
    q = (
        sa.select(
            m.from_.label("sender"),
            sa.func.count().label("messages"),
            sa.func.coalesce(sa.func.sum(m.num_segments), 0).label("segments"),
            sa.func.min(m.date_created).label("oldest"),
        )
        .where(m.account_sid == account_sid, m.status.in_(WAITING))
        .group_by(m.from_)
        .order_by(sa.func.count().desc(), m.from_)
    )
    return [
        {"sender": r.sender, "messages": int(r.messages), "segments": int(r.segments), "oldest": r.oldest}
        for r in conn.execute(q)
    ]
