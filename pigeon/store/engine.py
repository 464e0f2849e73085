"""Engine construction: SQLite tuned for a durable single writer, PostgreSQL with a pool.

SQLite allows one writer at a time, and a writer that finds the database locked waits in
SQLite's busy handler, which sleeps in steps of 1 to 100 ms: far longer than a group-commit
batch holds the lock, so two busy writers would spend most of their time asleep. Pigeon's
writers therefore queue before BEGIN IMMEDIATE on a lock that hands the database over the
moment it is free: a thread lock among the writers of one process, then an advisory lock
(flock) on the file ``<database>-writer`` among the processes that share the database
(`pigeon serve --workers N`). The busy handler is left for writers that are not Pigeon's.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def normalise_url(url: str) -> str:
    """Accept the URLs operators write (postgresql://, postgres://) and pick our driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class _WriterLock:
    """The lock a SQLite database's writers take before BEGIN IMMEDIATE (see the module doc)."""

    def __init__(self, path: str | None) -> None:
        self._path = f"{path}-writer" if path else None
        self._threads = threading.RLock()
        self._depth = 0  # re-entries by the thread holding the lock
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # Opened per process: a descriptor inherited through fork would share its lock.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            self._depth += 1
            locked = self._depth == 1 and self._path is not None
            try:
                if locked:
                    fcntl.flock(self._file(), fcntl.LOCK_EX)
                yield
            finally:
                if locked:
                    fcntl.flock(self._file(), fcntl.LOCK_UN)
                self._depth -= 1


#: SQLite engines -> the lock their writers take before BEGIN IMMEDIATE.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=max(pool_size, 16),
            # A SQLite connection is a file handle: never make a caller (perhaps the event
            # loop, see api/context.py) wait for one.
            max_overflow=-1,
        )
        path = engine.url.database
        _WRITE_LOCKS[engine] = _WriterLock(path if path and path != ":memory:" and "mode=memory" not in url else None)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy control transactions: the stdlib driver's implicit BEGIN would
            # otherwise defer locking, and BEGIN IMMEDIATE is what serialises claimers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed accept survives power loss, not only a process crash.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Every commit by another connection empties this connection's page cache; reading
            # pages through a shared memory map costs no system call and no copy.
            cur.execute("PRAGMA mmap_size=268435456")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
    that two writers queue instead of failing on a lock upgrade: in this process on a lock,
    across processes on busy_timeout."""
    lock = _WRITE_LOCKS.get(engine)
    with lock.held() if lock is not None else nullcontext(), engine.connect() as conn:
        conn.info["write"] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop("write", None)


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot for everything read inside it."""
    with engine.connect() as conn, conn.begin():
        yield conn


class Database:
    """The store as the edges see it: read and write transactions over one engine.

    Entry points hold a Database; use cases receive the Connection it yields.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_engine(url))

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    def read(self) -> AbstractContextManager[Connection]:
        return read(self.engine)

    def write(self) -> AbstractContextManager[Connection]:
        return write(self.engine)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
