"""Server-wide settings shared by every process (table settings): a key and a text value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pigeon.store.tables import settings

_GET = sa.select(settings.c.value).where(settings.c.key == sa.bindparam("key"))


def get_setting(conn: Connection, key: str) -> str | None:
    value = conn.execute(_GET, {"key": key}).scalar_one_or_none()
    return str(value) if value is not None else None


def get_or_create(conn: Connection, key: str, make: Callable[[], str], *, now: datetime) -> str:
    """The value under `key`, creating it with `make()` if there is none. Two processes racing
    to create it both end up with the one value that won: the loser's insert fails on the
    primary key inside a savepoint and it reads the winner's."""
    existing = get_setting(conn, key)
    if existing is not None:
        return existing
    try:
        with conn.begin_nested():
            conn.execute(settings.insert().values(key=key, value=make(), date_created=now))
    except IntegrityError:
        pass
    value = get_setting(conn, key)
    assert value is not None
    return value
