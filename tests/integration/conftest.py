"""Fixtures for the integration tier: the delivery pipeline on each store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pigeon.store.combined import combining
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from tests.integration.pipeline import Pipeline, make_pipeline


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
