"""`alembic upgrade head` builds exactly the schema that pigeon.store.tables describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pigeon.store.engine import Database
from pigeon.store.schema import current_revision, upgrade
from pigeon.store.tables import metadata


def test_migrations_match_the_metadata(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_upgrade_is_idempotent(db: Database) -> None:
    before = current_revision(db.engine)
    upgrade(db.engine)
    assert current_revision(db.engine) == before is not None
