"""`pigeon serve` warns about database settings that hurt Pigeon as it runs."""

from __future__ import annotations

import sqlalchemy as sa

from pigeon.store.engine import Database, configuration_warnings


def test_a_warning_exactly_when_postgresql_runs_without_autovacuum(db: Database) -> None:
    warnings = configuration_warnings(db.engine)
    if db.is_sqlite:
        assert warnings == []
        return
    with db.engine.connect() as conn:
        autovacuum = conn.execute(sa.text("SHOW autovacuum")).scalar()
    if autovacuum == "on":
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert "autovacuum is off" in warnings[0]
