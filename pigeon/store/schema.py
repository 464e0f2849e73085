"""Schema management: `alembic upgrade head` on start and from `pigeon db upgrade`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from pigeon.store.engine import BUSY_TIMEOUT_MS, connect

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=True))
    return cfg


#: The PostgreSQL advisory lock that upgrades queue on ("PIGE" in ASCII).
MIGRATION_LOCK = 0x50494745
#: How long a starting process waits on SQLite for another's migration: an hour.
UPGRADE_WAIT_MS = 3_600_000


class SchemaTooNew(Exception):
    """The database's schema is at a revision this release does not know: a newer release
    of Pigeon migrated it. Alembic's own report is a traceback ending in "Can't locate
    revision"."""


def _refuse_unknown_revision(conn: Connection, cfg: Config) -> None:
    known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
    unknown = [rev for rev in MigrationContext.configure(conn).get_current_heads() if rev not in known]
    if unknown:
        raise SchemaTooNew(
            f"the database's schema is at revision {', '.join(unknown)}, which this release of Pigeon"
            " does not know: a newer release made it. Run that release (or newer), or restore a backup"
            " taken before the upgrade."
        )


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema. Safe to run on every start, and from several
    processes at once: every `pigeon serve` and `pigeon worker` runs it as it starts, and after
    a release several start together. They queue (a PostgreSQL advisory lock held for the
    transaction; on SQLite, BEGIN IMMEDIATE), so the first upgrades and the others then find
    the schema at head; unqueued, the second failed on a table the first had just made."""
    _migrate(engine, lambda cfg: command.upgrade(cfg, "head"))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` ("base": no tables), to go back to an older release."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))


class ForeignKeysBroken(Exception):
    """A migration on SQLite left rows that refer to rows that are not there; it was rolled back."""


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    """`run` Alembic on one connection, in one transaction, queued behind any other process's
    migration.

    On SQLite, foreign keys are off while it runs. SQLite alters most of a table by copying it
    to a new one, dropping the old and renaming the new (Alembic's batch mode); with foreign
    keys enforced, dropping a table that others refer to (`accounts`) failed once the store
    held data, or would take the rows that refer to it along (ON DELETE CASCADE). The pragma
    does nothing inside a transaction, so it is set before and restored after; what the
    migration did is checked instead (PRAGMA foreign_key_check) before it commits."""
    cfg = alembic_config(engine)
    with connect(engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        driver: Any = conn.connection.driver_connection
        if sqlite:
            conn.info["write"] = True  # BEGIN IMMEDIATE (see engine.py): the lock before any read
            # Another process's migration may take longer than a write (a backfill of a large
            # store): wait for it, as PostgreSQL's advisory lock does, rather than fail the start.
            driver.execute(f"PRAGMA busy_timeout={UPGRADE_WAIT_MS}")
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if not sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                _refuse_unknown_revision(conn, cfg)
                before = MigrationContext.configure(conn).get_current_heads()
                cfg.attributes["connection"] = conn
                run(cfg)
                # Only after a migration ran: a start with nothing to migrate does not scan the store.
                if sqlite and MigrationContext.configure(conn).get_current_heads() != before:
                    _check_foreign_keys(conn)
        finally:
            conn.info.pop("write", None)
            if sqlite:
                driver.execute("PRAGMA foreign_keys=ON")
                driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent = broken[0][0], broken[0][1], broken[0][2]
        raise ForeignKeysBroken(
            f"the migration left {len(broken)} row(s) referring to rows that are not there"
            f" (first: {table} row {rowid}, to {parent}); it was undone and the schema is as it was"
        )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
