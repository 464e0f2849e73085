"""The first start's set-up (one account, two numbers, the sample inventory) happens once,
however many processes start together on an empty store."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from pigeon.bootstrap import FirstRun, ensure_first_account
from pigeon.ports import SystemClock
from pigeon.store.engine import Database
from pigeon.store.tables import accounts
from tests.conftest import drop_pg_database, make_pg_database

pytestmark = pytest.mark.postgres


def test_processes_starting_together_make_one_first_account(pg_template: str) -> None:
    """Three `pigeon serve` starting at once on an empty PostgreSQL: each has an engine of its
    own; one makes the account, the others find it, none fails (all but one used to end on a
    duplicate key of the sample inventory)."""
    name, url = make_pg_database(pg_template)
    engines = [Database.from_url(url) for _ in range(3)]
    start = threading.Barrier(len(engines))
    made: list[FirstRun | None] = []
    errors: list[BaseException] = []

    def first_start(db: Database) -> None:
        start.wait()
        try:
            made.append(ensure_first_account(db, SystemClock()))
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=first_start, args=(db,)) for db in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert errors == []
        assert sum(first is not None for first in made) == 1
        with engines[0].read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one() == 1
    finally:
        for db in engines:
            db.dispose()
        drop_pg_database(name)
