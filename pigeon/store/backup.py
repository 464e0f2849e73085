"""A consistent copy of a SQLite store, taken while Pigeon runs (`pigeon db backup PATH`).

Copying pigeon.db with `cp` while the server writes gives a file that may be torn (a page
from before a commit next to one from after it) and misses every commit still in the -wal
file. SQLite's `VACUUM INTO` writes one snapshot of the database, compacted, into a new file:
it reads inside one read transaction, which in WAL mode never blocks a writer (commits carry
on into the log, which is checkpointed once the copy is done). The copy goes to a temporary
file beside the target, is checked (`PRAGMA integrity_check`), and only then takes the
target's name: a file at PATH is always a whole, checked backup, readable by its owner only.

PostgreSQL has its own tools for this (pg_dump, or base backups with WAL archiving), which do
it better than Pigeon could; the command says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from pigeon.store.sqlite_files import make_private


class BackupError(Exception):
    """The backup could not be made; nothing was left at the target."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    seconds: float
    revision: str | None  # the schema revision the copy is at
    messages: int


def _source_path(engine: Engine) -> Path:
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        raise BackupError("only a SQLite store in a file can be copied this way")
    return Path(engine.url.database)


def _check(path: Path) -> tuple[str | None, int]:
    """The copy's schema revision and message count, once SQLite says the file is sound."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as copy:
        verdict = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if verdict != ["ok"]:
            raise BackupError(f"the copy failed SQLite's integrity check: {'; '.join(verdict[:5])}")
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
        messages = copy.execute("SELECT count(*) FROM messages").fetchone()
    return (revision[0] if revision else None), int(messages[0])


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_sqlite(engine: Engine, target: Path, *, busy_timeout: float = 30.0) -> Backup:
    """Write a checked copy of the store to `target`, which must not exist yet."""
    source = _source_path(engine)
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    target = target.resolve()
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new name (a backup never overwrites)")
    if not target.parent.is_dir():
        raise BackupError(f"there is no directory {target.parent}")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    started = time.monotonic()
    try:
        # Made 0600 before SQLite writes into it (VACUUM INTO takes an empty file): the copy
        # holds the auth tokens and message bodies the store does (`pigeon.store.sqlite_files`).
        make_private(partial)
        with contextlib.closing(sqlite3.connect(source, timeout=busy_timeout, isolation_level=None)) as conn:
            conn.execute("VACUUM INTO ?", (str(partial),))
        revision, messages = _check(partial)
        _sync(partial)  # VACUUM INTO leaves its output unsynced: make it survive a power cut
        os.replace(partial, target)
        _sync(target.parent)  # and the new name with it
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy the store: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Backup(target, target.stat().st_size, time.monotonic() - started, revision, messages)
