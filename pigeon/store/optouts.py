"""Opt-outs: recipients who asked a sender (or a whole Messaging Service) to stop."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import opt_outs

Row = dict[str, Any]


def find_opt_out(
    conn: Connection, *, account_sid: str, sender: str | None, recipient: str, service_sid: str | None = None
) -> Row | None:
    """The opt-out that blocks `sender` (or `service_sid`) from texting `recipient`, if any."""
    senders = [s for s in (sender, service_sid) if s]
    if not senders:
        return None
    q = sa.select(opt_outs).where(
        opt_outs.c.account_sid == account_sid,
        opt_outs.c.recipient == recipient,
        opt_outs.c.sender.in_(senders),
    )
    row = conn.execute(q.limit(1)).mappings().first()
    return dict(row) if row else None
