"""Times in the store: aware UTC datetimes in and out on both stores; on SQLite, the text is
the one SQLAlchemy's own DATETIME writes, so databases written before the fast path read alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import DATETIME

from pigeon.store.engine import Database
from pigeon.store.tables import UTCDateTime

_probe = sa.Table(
    "time_probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=True),
)

TIMES = [
    datetime(2026, 12, 5, 13, 55, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 5, 13, 55, 0, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 5, 15, 55, 0, 7, tzinfo=timezone(timedelta(hours=2))),  # converted to UTC
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
]


@pytest.fixture
def probe(db: Database) -> Database:
    with db.write() as conn:
        _probe.drop(conn, checkfirst=True)
        _probe.create(conn)
    return db


def test_times_round_trip_as_aware_utc(probe: Database) -> None:
    with probe.write() as conn:
        conn.execute(_probe.insert(), [{"id": i, "at": at} for i, at in enumerate([*TIMES, None])])
    with probe.read() as conn:
        got = conn.execute(sa.select(_probe.c.at).order_by(_probe.c.id)).scalars().all()
        assert got == [*TIMES, None]
        assert all(at.tzinfo is UTC for at in got if at is not None)
        # A datetime parameter compares as the stored one does.
        assert conn.execute(sa.select(sa.func.count()).where(_probe.c.at >= TIMES[1])).scalar_one() == 3


def test_sqlite_stores_the_text_sqlalchemy_writes(probe: Database) -> None:
    if probe.engine.dialect.name != "sqlite":
        pytest.skip("SQLite keeps times as text")
    theirs = DATETIME().bind_processor(probe.engine.dialect)  # type: ignore[no-untyped-call]
    assert theirs is not None
    with probe.write() as conn:
        conn.execute(_probe.insert(), [{"id": i, "at": at} for i, at in enumerate(TIMES)])
        stored = conn.exec_driver_sql("SELECT at FROM time_probe ORDER BY id").scalars().all()
        assert stored == [theirs(at.astimezone(UTC).replace(tzinfo=None)) for at in TIMES]
        # Text without microseconds (SQLite's own CURRENT_TIMESTAMP) reads too.
        conn.exec_driver_sql("INSERT INTO time_probe (id, at) VALUES (99, '2026-12-05 13:55:00')")
        at = conn.execute(sa.select(_probe.c.at).where(_probe.c.id == 99)).scalar_one()
        assert at == datetime(2026, 12, 5, 13, 55, tzinfo=UTC)


def test_a_naive_datetime_is_refused(probe: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), probe.write() as conn:
        conn.execute(_probe.insert().values(id=1, at=datetime(2026, 12, 5, 13, 55)))


def test_one_instant_in_two_zones_is_one_text_and_naive_stays_refused(probe: Database) -> None:
    """SQLite's conversions are remembered per value: an instant met first in one zone must
    still be stored as UTC text when met in another, and a naive time never passes for it."""
    utc = datetime(2026, 12, 5, 13, 55, 0, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    with probe.write() as conn:
        conn.execute(_probe.insert(), [{"id": 1, "at": utc}, {"id": 2, "at": paris}])
        if probe.engine.dialect.name == "sqlite":
            stored = conn.exec_driver_sql("SELECT at FROM time_probe ORDER BY id").scalars().all()
            assert stored == ["2026-12-05 13:55:00.000005"] * 2
        got = conn.execute(sa.select(_probe.c.at).order_by(_probe.c.id)).scalars().all()
        assert got == [utc, utc] and all(at.tzinfo is UTC for at in got)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), probe.write() as conn:
        conn.execute(_probe.insert().values(id=3, at=utc.replace(tzinfo=None)))
