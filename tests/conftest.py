"""Shared fixtures: a real store on SQLite and on PostgreSQL, and a frozen clock.

PostgreSQL: one template database is migrated once per test session; each test gets a
fresh clone of it (CREATE DATABASE ... TEMPLATE), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pigeon.store.engine import Database, normalise_url
from pigeon.store.schema import upgrade
from pigeon.testing import FrozenClock

POSTGRES_URL = os.environ.get("PIGEON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "twilio"


def _admin_engine() -> sa.Engine:
    return sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _pg_url(name: str) -> str:
    return sa.make_url(normalise_url(POSTGRES_URL)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"pigeon_tpl_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = Database.from_url(_pg_url(name))
    upgrade(db.engine)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def make_pg_database(template: str) -> tuple[str, str]:
    name = f"pigeon_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    admin.dispose()
    return name, _pg_url(name)


def drop_pg_database(name: str) -> None:
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pigeon.db'}"
        db = Database.from_url(url)
        upgrade(db.engine)
        db.dispose()
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name, url = make_pg_database(template)
    yield url
    drop_pg_database(name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()
