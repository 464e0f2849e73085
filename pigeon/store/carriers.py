"""Carrier bind status snapshots (table carrier_status), one row per carrier per process."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import carrier_status

Row = dict[str, Any]


def save_status(conn: Connection, *, carrier: str, holder: str, status: Mapping[str, Any], now: datetime) -> None:
    values = {"status": dict(status), "updated_at": now}
    updated = conn.execute(
        carrier_status.update()
        .where(carrier_status.c.carrier == carrier, carrier_status.c.holder == holder)
        .values(**values)
    )
    if not updated.rowcount:
        conn.execute(carrier_status.insert().values(carrier=carrier, holder=holder, **values))


def list_status(conn: Connection, *, fresh_within: timedelta | None = None, now: datetime | None = None) -> list[Row]:
    """Snapshots, newest first; with `fresh_within`, only those of live processes."""
    q = sa.select(carrier_status).order_by(carrier_status.c.carrier, carrier_status.c.updated_at.desc())
    if fresh_within is not None and now is not None:
        q = q.where(carrier_status.c.updated_at >= now - fresh_within)
    return [dict(r) for r in conn.execute(q).mappings()]


def forget(conn: Connection, *, holder: str) -> None:
    """A process shutting down removes its rows: its binds are gone with it."""
    conn.execute(carrier_status.delete().where(carrier_status.c.holder == holder))
