"""Inbound messages that no account can take (table unroutable_inbound)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import messages, unroutable_inbound

Row = dict[str, Any]


def keep_unroutable(
    conn: Connection, *, from_: str, to: str, body: str, carrier: str, reason: str, now: datetime
) -> None:
    conn.execute(
        unroutable_inbound.insert().values(
            from_=from_, to=to, body=body, carrier=carrier, reason=reason, received_at=now
        )
    )


def list_unroutable(conn: Connection, *, to: str | None = None, limit: int = 50) -> list[Row]:
    q = sa.select(unroutable_inbound).order_by(unroutable_inbound.c.id.desc()).limit(limit)
    if to is not None:
        q = q.where(unroutable_inbound.c.to == to)
    return [dict(r) for r in conn.execute(q).mappings()]


def recent_replies(conn: Connection, *, sender: str, recipient: str, since: datetime) -> int:
    """Replies sent from `sender` to `recipient` since `since` (for reply-loop protection)."""
    q = sa.select(sa.func.count()).where(
        messages.c.from_ == sender,
        messages.c.to == recipient,
        messages.c.direction == "outbound-reply",
        messages.c.date_created >= since,
    )
    return int(conn.execute(q).scalar_one())
