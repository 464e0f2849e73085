"""Fixtures for the integration tier: the delivery pipeline on each store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pigeon.store.combined import combining
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from tests.conftest import drop_pg_database, make_pg_database
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.smsc.node import ensure_node_modules


@pytest.fixture
def pipe(db: Database, clock: FrozenClock) -> Iterator[Pipeline]:
    """The delivery pipeline on SQLite and on PostgreSQL (through `db`). On SQLite its writes
    are combined, as in the worker processes (`pigeon.store.combined`)."""
    pipeline = make_pipeline(db, clock)
    try:
        with combining(db.engine):
            yield pipeline
    finally:
        pipeline.spool.stop()


@pytest.fixture
def pg(pg_template: str) -> Iterator[Database]:
    """A fresh store on PostgreSQL only, for what only a database server does (sessions
    running side by side, a session ended by the server)."""
    name, url = make_pg_database(pg_template)
    database = Database.from_url(url)
    yield database
    database.dispose()
    drop_pg_database(name)


@pytest.fixture(scope="module")
def npm_smsc() -> None:
    """The npm `smpp` package that smsc.js runs on, installed once: modules that start the
    SMSC use it with ``pytestmark = pytest.mark.usefixtures("npm_smsc")``."""
    ensure_node_modules()
