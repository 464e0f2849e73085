"""Messaging Services and the senders in their pools."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import messages, messaging_services, phone_numbers

Row = dict[str, Any]


def get_service(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(messaging_services).where(messaging_services.c.sid == sid)
    if account_sid is not None:
        q = q.where(messaging_services.c.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def sender_numbers(conn: Connection, service_sid: str) -> list[Row]:
    """The SMS-capable numbers in a service's pool, oldest first."""
    q = (
        sa.select(phone_numbers)
        .where(phone_numbers.c.messaging_service_sid == service_sid, phone_numbers.c.sms_capable.is_(True))
        .order_by(phone_numbers.c.date_created, phone_numbers.c.sid)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def last_sender_to(conn: Connection, service_sid: str, recipient: str) -> str | None:
    """The sender most recently used by this service for this recipient (sticky sender)."""
    q = (
        sa.select(messages.c.from_)
        .where(
            messages.c.messaging_service_sid == service_sid,
            messages.c.to == recipient,
            messages.c.from_.is_not(None),
        )
        .order_by(messages.c.date_created.desc())
        .limit(1)
    )
    value = conn.execute(q).scalar_one_or_none()
    return str(value) if value is not None else None
