"""Schema management: `alembic upgrade head` on start and from `pigeon db upgrade`; the way
back for an operator returning to an older release (`pigeon db downgrade`), with what each
migration's downgrade drops, read from its source (`revisions`); and what every other command
asks of a store before it touches it: that it is there (`missing_file`) and at this release's
schema (`require_head`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from pigeon.store.engine import BUSY_TIMEOUT_MS, connect
from pigeon.store.messages import forget_redacted_fingerprints
from pigeon.store.settings import ensure_content_key, forget_content_key

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


class SchemaBehind(Exception):
    """The store's schema is older than this release's newest (or there is none yet). Only
    `pigeon serve`, `pigeon worker` and `pigeon db upgrade` migrate a store: any other command
    that did would move a store shared with running processes of an older release, or one just
    taken back for one, behind its operator's back."""

    def __init__(self, current: str | None, head: str) -> None:
        where = "the store has no schema yet" if current is None else f"the store's schema is at {current}"
        super().__init__(f"{where}; this release needs {head}: run `pigeon db upgrade`")
        self.current, self.head = current, head


class CannotDowngrade(Exception):
    """A downgrade to a revision this release does not know, or to one the store is not at or
    past (a store with no schema has nothing to take back)."""


def _too_new(unknown: list[str]) -> SchemaTooNew:
    return SchemaTooNew(
        f"the database's schema is at revision {', '.join(unknown)}, which this release of Pigeon"
        " does not know: a newer release made it. Run that release (or newer), or restore a backup"
        " taken before the upgrade."
    )


def _refuse_unknown_revision(conn: Connection, cfg: Config) -> None:
    known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
    unknown = [rev for rev in MigrationContext.configure(conn).get_current_heads() if rev not in known]
    if unknown:
        raise _too_new(unknown)


@dataclass(frozen=True)
class Revision:
    """A migration as `pigeon db` shows it: its id, the first line of its docstring, and what
    its downgrade drops with the data in it: tables ("table usage_daily") and columns
    ("messages.fail_code"). Indexes and rewritten values are not listed."""

    id: str
    summary: str
    drops: tuple[str, ...]


def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def require_head(engine: Engine) -> None:
    """Raise SchemaBehind unless the store's schema is this release's newest, SchemaTooNew when
    a newer release made it. Reads the store's revision and nothing else."""
    scripts = _scripts()
    head = scripts.get_current_head()
    assert head is not None  # the migrations form one line (see `revisions`)
    current = current_revision(engine)
    if current == head:
        return
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        raise _too_new([current])
    raise SchemaBehind(current, head)


def missing_file(url: str) -> Path | None:
    """The file a SQLite URL names, when it is not there (None when it is, or for a database in
    memory or on a server). Opening it would make it: SQLite makes a file it is asked to open."""
    if not url.startswith("sqlite"):
        return None
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return None  # opening it says what is wrong with it (engine.check_url)
    name = parsed.database or ""
    if name in ("", ":memory:") or parsed.query.get("mode") == "memory" or parsed.query.get("uri"):
        return None  # in memory, or a file: URI whose options (mode=ro...) SQLite reads itself
    path = Path(name).absolute()
    return None if path.exists() else path


def revisions() -> list[Revision]:
    """Every migration of this release, oldest first (they form one line: each revises the one
    before)."""
    newest_first = list(_scripts().walk_revisions())
    return [Revision(s.revision, s.doc, _drops(Path(s.path))) for s in reversed(newest_first)]


def _drops(path: Path) -> tuple[str, ...]:
    """What a migration file's `downgrade()` drops, in source order: `op.drop_table("t")`,
    `op.drop_column("t", "c")`, and `b.drop_column("c")` in `with op.batch_alter_table("t") as b`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    down = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade")
    finder = _DropFinder()
    finder.visit(down)
    return tuple(finder.found)


class _DropFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.batches: dict[str, str] = {}  # the name a batch is bound to, in the block -> its table
        self.found: list[str] = []

    def visit_With(self, node: ast.With) -> None:
        outer = dict(self.batches)
        for item in node.items:
            call = item.context_expr
            if isinstance(item.optional_vars, ast.Name) and isinstance(call, ast.Call) and _named(call, "op"):
                if isinstance(call.func, ast.Attribute) and call.func.attr == "batch_alter_table":
                    self.batches[item.optional_vars.id] = _text(call, 0)
        self.generic_visit(node)
        self.batches = outer

    def visit_Call(self, node: ast.Call) -> None:
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if method == "drop_table" and _named(node, "op"):
            self.found.append(f"table {_text(node, 0)}")
        elif method == "drop_column" and _named(node, "op"):
            self.found.append(f"{_text(node, 0)}.{_text(node, 1)}")
        elif method == "drop_column":
            batch = next((table for name, table in self.batches.items() if _named(node, name)), None)
            if batch is not None:
                self.found.append(f"{batch}.{_text(node, 0)}")
        self.generic_visit(node)


def _named(call: ast.Call, owner: str) -> bool:
    """Whether the call is a method of the name `owner` (`op.drop_table(...)` of "op")."""
    func = call.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == owner


def _text(call: ast.Call, index: int) -> str:
    """The call's positional argument `index`, a string as written in the migration."""
    arg = call.args[index] if index < len(call.args) else None
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "?"


def require_known(revision: str) -> None:
    """Raise CannotDowngrade unless `revision` is one of this release's migrations."""
    ids = [r.id for r in revisions()]
    if revision not in ids:
        raise CannotDowngrade(
            f"there is no revision {revision!r}: this release knows {ids[0]} to {ids[-1]}"
            " (`pigeon db downgrade --help` lists them)"
        )


def to_undo(current: str | None, target: str) -> list[Revision]:
    """The migrations that taking a store at `current` back to `target` undoes, newest first
    (none when it is there already). `target` "base" takes it back to no tables at all.
    Raises CannotDowngrade for a target this release does not know or that is newer than
    `current`, and SchemaTooNew for a store a newer release made."""
    chain = revisions()
    ids = [r.id for r in chain]
    if current is not None and current not in ids:
        raise _too_new([current])
    if target != "base":
        require_known(target)
    if current is None:
        raise CannotDowngrade("the database has no schema yet: there is nothing to take back")
    start = 0 if target == "base" else ids.index(target) + 1
    if start > ids.index(current) + 1:
        raise CannotDowngrade(
            f"the database's schema is at revision {current}, and {target} is newer:"
            " a downgrade only goes back (`pigeon db upgrade` goes forward)"
        )
    return chain[start : ids.index(current) + 1][::-1]


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema. Safe to run on every start, and from several
    processes at once: every `pigeon serve` and `pigeon worker` runs it as it starts, and after
    a release several start together. They queue (a PostgreSQL advisory lock held for the
    transaction; on SQLite, BEGIN IMMEDIATE), so the first upgrades and the others then find
    the schema at head; unqueued, the second failed on a table the first had just made.

    In the same transaction, the install's content key is made if there is none
    (`pigeon.store.settings.CONTENT_KEY`), so every process finds it. When it is made in a
    store that has messages (the first start of the release that keys content fingerprints),
    the unkeyed fingerprints of the messages redacted until then, and their request log
    entries', are cleared: from those a short text could be found again."""
    forget_content_key(engine)

    def run(cfg: Config) -> None:
        command.upgrade(cfg, "head")
        conn: Connection = cfg.attributes["connection"]
        if ensure_content_key(conn, now=datetime.now(UTC)):
            forget_redacted_fingerprints(conn)

    _migrate(engine, run)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Take the schema back to `revision` ("base": no tables), to go back to an older release;
    returns the revision it was at. The target is checked against the store's revision inside
    the migration's lock (`to_undo`), so that an upgrade that ran meanwhile is not overtaken."""
    came_from: list[str | None] = []

    def run(cfg: Config) -> None:
        current = MigrationContext.configure(cfg.attributes["connection"]).get_current_revision()
        to_undo(current, revision)
        came_from.append(current)
        command.downgrade(cfg, revision)

    _migrate(engine, run)
    return came_from[0]


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
            if not conn.invalidated:  # a lost connection's info went with it (see `engine.write`)
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
    """The store's schema revision (None: no schema yet); StoreUnavailable when it cannot be reached."""
    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()
