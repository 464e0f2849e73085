"""Engine construction: SQLite tuned for a durable single writer, PostgreSQL with a pool.

PostgreSQL connections come from a pool; one that sat idle for a while is checked with a
round trip before use (`_ping_when_idle`), one that was busy a moment ago is not.

SQLite allows one writer at a time, and a writer that finds the database locked waits in
SQLite's busy handler, which sleeps in steps of 1 to 100 ms: far longer than a group-commit
batch holds the lock, so two busy writers would spend most of their time asleep. Pigeon's
writers therefore queue before BEGIN IMMEDIATE on a lock that hands the database over the
moment it is free: an advisory lock (flock) on the file ``<database>-writer``, which every
writing thread of every process sharing the database (`pigeon serve --workers N`) takes
through a descriptor of its own. The busy handler is left for writers that are not Pigeon's.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pigeon.domain.errors import StoreUnavailable
from pigeon.store import sqlite_files, write_health

R = TypeVar("R")

#: SQLite: how long a connection waits for a writer that is not Pigeon's (see the module doc).
BUSY_TIMEOUT_MS = 30_000
#: SQLite: WAL pages after which a committing writer checkpoints (SQLite's default is 1000).
AUTOCHECKPOINT_PAGES = 16000


def normalise_url(url: str) -> str:
    """Accept the URLs operators write (postgresql://, postgres://) and pick our driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class _WriterLock:
    """The lock a SQLite database's writers take before BEGIN IMMEDIATE (see the module doc).

    Each thread holds the advisory lock through a file descriptor of its own, so that the
    writers of this process and of the others queue for it alike: when it is released the
    kernel wakes them all, and none is favoured for being in the process that released it.
    A database without a file (in memory) has one process: a thread lock does."""

    def __init__(self, path: str | None) -> None:
        self._path = f"{path}-writer" if path else None
        self._threads = threading.RLock()
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._path is None:
            with self._threads:
                yield
            return
        mine = self._local.__dict__.get("fd")
        if mine is None or mine.pid != os.getpid():  # a descriptor inherited through fork shares its lock
            try:
                mine = self._local.fd = _LockFile(self._path)
            except OSError as exc:  # the database's directory is gone, or not ours to write
                raise StoreUnavailable(f"the database's lock file cannot be opened: {exc}") from exc
        if mine.depth == 0:
            fcntl.flock(mine.fd, fcntl.LOCK_EX)
        mine.depth += 1
        try:
            yield
        finally:
            mine.depth -= 1
            if mine.depth == 0:
                fcntl.flock(mine.fd, fcntl.LOCK_UN)

    def held_here(self) -> bool:
        """Whether the calling thread holds the lock (inside `held`)."""
        if self._path is None:
            return bool(self._threads._is_owned())  # type: ignore[attr-defined]
        mine = self._local.__dict__.get("fd")
        return mine is not None and mine.pid == os.getpid() and mine.depth > 0


class _LockFile:
    """One thread's descriptor of a lock file; closed with the thread."""

    def __init__(self, path: str) -> None:
        self.pid = os.getpid()
        self.depth = 0  # re-entries by this thread
        self.fd = -1  # until it is open: an `open` that fails leaves nothing to close
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __del__(self) -> None:
        if self.pid == os.getpid() and self.fd >= 0:
            os.close(self.fd)


#: SQLite engines -> the lock their writers take before BEGIN IMMEDIATE.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _json_text(value: Any) -> str:
    """JSON columns' text (timeline details, webhook parameters), by orjson: every message
    writes about a dozen of them and reads three, and the standard library's encoder took
    2.5 µs for a status callback's parameters where orjson takes 0.2."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


#: How every engine is made: JSON columns by orjson; and a failed statement's error, which
#: ends up in the log, names its SQL but not its values (hide_parameters), which can be auth
#: tokens, console session secrets or message bodies. SQLAlchemy would print them all.
_ENGINE = {"json_serializer": _json_text, "json_deserializer": orjson.loads, "hide_parameters": True}


class UnusableUrl(ValueError):
    """A database URL that names no database Pigeon can open: it does not parse, or names a
    driver that does not exist or is not installed. Said in a line by the CLI, not a traceback
    from deep inside SQLAlchemy."""


def check_url(url: str) -> None:
    """UnusableUrl unless `url` parses and names an installed driver. Never quotes the URL,
    which may hold a password."""
    try:
        parsed = sa.make_url(normalise_url(url))
    except ValueError as exc:  # what the URL parser raises for a port that is not a number
        raise UnusableUrl("it cannot be read (is its port a number?)") from exc
    except sa.exc.ArgumentError as exc:
        raise UnusableUrl("it is not a URL such as postgresql://user@host:5432/db or sqlite:///pigeon.db") from exc
    try:
        parsed.get_dialect().import_dbapi()
    except sa.exc.NoSuchModuleError as exc:
        raise UnusableUrl(
            f"no database driver is called {parsed.drivername!r}; use postgresql:// or sqlite:///"
        ) from exc
    except ImportError as exc:
        raise UnusableUrl(
            f"the driver of {parsed.drivername!r} is not installed; use postgresql:// or sqlite:///"
        ) from exc


def create_engine(url: str, *, pool_size: int = 10, ping_always: bool = False) -> Engine:
    """`ping_always`: check every connection as it leaves the pool (pool_pre_ping), for an
    engine whose reads are few and which should notice a restarted server before a read does."""
    check_url(url)
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            **_ENGINE,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=max(pool_size, 16),
            # A SQLite connection is a file handle: never make a caller (perhaps the event
            # loop, see api/context.py) wait for one.
            max_overflow=-1,
        )
        # executemany INSERTs as multi-row INSERT statements (SQLAlchemy's "insertmanyvalues",
        # which it does by default for drivers other than this one). The stdlib driver lets go
        # of the GIL for every row it steps; with a busy event loop in the process, taking it
        # back can wait up to the interpreter's switch interval each time, and a writer does
        # that while it holds the database's write lock. One statement per page of rows lets
        # go of it once.
        engine.dialect.use_insertmanyvalues_wo_returning = True
        path = engine.url.database
        _WRITE_LOCKS[engine] = _WriterLock(path if path and path != ":memory:" and "mode=memory" not in url else None)
        if (private := sqlite_files.store_file(path)) is not None:

            @event.listens_for(engine, "do_connect")
            def _owner_only(*_args: Any) -> None:
                # Before SQLite opens it: a store it made would be readable by all (0644).
                sqlite_files.make_private(private)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy control transactions: the stdlib driver's implicit BEGIN would
            # otherwise defer locking, and BEGIN IMMEDIATE is what serialises claimers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed accept survives power loss, not only a process crash.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            # A commit that finds the log past this many pages copies it into the database
            # and syncs the file, with Pigeon's writer lock held: every other writer waits
            # (tens of milliseconds under load). `WalCheckpointer` does that work outside the
            # lock, often enough that this threshold is only the fallback.
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=ping_always,
        connect_args=_postgres_connect_args(sa.engine.make_url(url).query),
        **_ENGINE,
    )
    if not ping_always:
        _ping_when_idle(engine)
    return engine


#: How a PostgreSQL connection notices a server that is gone without a word (a network
#: partition, a failover that leaves the old primary's connections open and silent), and how
#: the server ends a transaction whose client went silent. Without them a connection waited for
#: an answer for as long as the kernel's TCP defaults allow (hours): /healthz hung instead of
#: answering 503, the processes did not recover when the server came back, and a worker cut off
#: inside a claim kept its row locks (sender_pacing) on the server, so every other worker's
#: claims waited behind them and sending stopped everywhere (claims no longer wait for a
#: pacing row for long: `pigeon.store.pacing`).
#: - connect_timeout: a new connection gives up after this many seconds;
#: - keepalives: an idle connection is probed after 30 s, then every 10 s, and dropped after
#:   3 unanswered probes (a query waiting for its answer counts as idle to TCP);
#: - tcp_user_timeout: data sent and not acknowledged for 30 s drops the connection;
#: - idle_in_transaction_session_timeout: the server ends a session that sits in a transaction
#:   without a statement for 5 minutes, releasing its locks. Pigeon's transactions are short and
#:   never wait for the network inside; 5 minutes leaves room for a slow export's reads.
#: A value given in the database URL's query (``?connect_timeout=3``) wins.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "options": "-c idle_in_transaction_session_timeout=300000",
}


def _postgres_connect_args(query: Any) -> dict[str, Any]:
    return {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in query}


#: A pooled PostgreSQL connection idle for longer than this is checked before it is used.
PING_AFTER_IDLE = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a connection that sat idle in the pool before handing it out (a restarted or
    failed-over server has closed it), but not one that was in use a moment ago: pinging on
    every checkout (pool_pre_ping) costs a round trip per transaction, the dearest part of a
    busy worker's small transactions. A connection that fails the check is replaced."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE:
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            # The check opened a transaction on the driver's connection; end it, or a lookup
            # (autocommit, see `lookup`) could not switch the connection to autocommit.
            dbapi_conn.rollback()
        except Exception as exc:
            raise sa.exc.DisconnectionError() from exc  # the pool retries with a new connection


def writer_lock(engine: Engine) -> AbstractContextManager[None]:
    """The lock `write` takes before BEGIN IMMEDIATE on SQLite (re-entrant per thread); on other
    databases, nothing."""
    lock = _WRITE_LOCKS.get(engine)
    return lock.held() if lock is not None else nullcontext()


def holds_writer_lock(engine: Engine) -> bool:
    """Whether the calling thread is inside a SQLite write transaction of this engine."""
    lock = _WRITE_LOCKS.get(engine)
    return lock is not None and lock.held_here()


def connect(engine: Engine) -> Connection:
    """`engine.connect()`, with a failure to connect (the server down or refusing, the file
    out of reach) raised as `StoreUnavailable`: nothing was done, and the caller may say so
    (the API answers 503 rather than 500) and try again later."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise StoreUnavailable(f"the database could not be reached: {_driver_words(exc)}") from exc


@contextmanager
def _unavailable_when_lost(*, committing: bool = False) -> Iterator[None]:
    """Raise as `StoreUnavailable` what leaves nothing written inside this block: a
    connection lost (the server restarted, the connection was killed) before the commit;
    SQLite failing to read or write its files before the commit (SQLITE_IOERR and its
    extended codes: a disk failing, a volume gone); and SQLite finding no room (the disk or
    the database full) or the database locked by a writer that is not Pigeon's for longer
    than the busy timeout, even at the commit, which SQLite makes atomically (a COMMIT that
    fails leaves the transaction uncommitted). A disk error at the COMMIT stays what it is:
    if the log's frames were written and only their sync failed, a restart may find the
    transaction committed, so its outcome is unknown.
    `committing`: the block holds the COMMIT, where a lost connection leaves the outcome
    unknown; that error stays what it is."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        sqlite_error = getattr(exc.orig, "sqlite_errorname", None)
        if sqlite_error == "SQLITE_FULL":
            raise StoreUnavailable(f"the database is full: {_driver_words(exc)}") from exc
        if sqlite_error and sqlite_error.startswith("SQLITE_IOERR") and not committing:
            raise StoreUnavailable(f"the database's files could not be read or written: {_driver_words(exc)}") from exc
        if sqlite_error == "SQLITE_BUSY":  # another program held the write lock past the busy timeout
            raise StoreUnavailable(f"the database is locked by another writer: {_driver_words(exc)}") from exc
        if committing or not exc.connection_invalidated:
            raise
        raise StoreUnavailable(f"the connection to the database was lost: {_driver_words(exc)}") from exc


def _driver_words(exc: sa.exc.DBAPIError) -> str:
    # The driver's own message: SQLAlchemy's text adds the statement, which says nothing here.
    return " ".join(str(exc.orig).split()) or type(exc.orig).__name__


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
    that two writers queue instead of failing on a lock upgrade; they queue on the writer lock
    (see the module doc), not in SQLite's busy handler.

    `StoreUnavailable` when the database cannot be reached, the connection is lost before the
    commit, or SQLite has no room; any other error at the commit itself is raised as it is
    (the commit may have taken effect)."""
    lock = _WRITE_LOCKS.get(engine)
    health = write_health.of(engine)
    try:
        with lock.held() if lock is not None else nullcontext(), connect(engine) as conn:
            conn.info["write"] = True
            try:
                with _unavailable_when_lost(committing=True), conn.begin():
                    with _unavailable_when_lost():
                        yield conn
            finally:
                # A connection lost (invalidated) takes its info with it; asking for the info
                # would connect again, and while the server refuses connections (a restart, a
                # failover) that refusal would replace the `StoreUnavailable` raised above.
                if not conn.invalidated:
                    conn.info.pop("write", None)
    except StoreUnavailable as exc:
        health.failed(str(exc))  # for GET /healthz (`pigeon.store.write_health`)
        raise
    health.succeeded()


#: What `index_plans` switches off: each statement it covers touches a handful of rows
#: through an index, which a nested loop over index scans reads best whatever the estimates.
_INDEX_ONLY = ("enable_seqscan", "enable_sort", "enable_hashjoin", "enable_mergejoin")


@contextmanager
def index_plans(conn: Connection) -> Iterator[None]:
    """Plan the statements run inside this block on their indexes, whatever the statistics say.

    For the outbox's statements, which always have the right index: the callback claim reads
    the first hundred due rows in (status, next_attempt_at) order; the enqueue and the promote
    look up the deliveries of a batch of messages by message SID. PostgreSQL plans them from
    statistics that a fast-growing table outruns between two ANALYZEs. In the e2e bench at 600 messages/s,
    a minute in, it estimated 8 due deliveries where 3,500 were and fetched and sorted them all
    for every claim (10-24 ms), and, taking each message SID for a third of the table, read the
    whole outbox for every batch of callbacks enqueued or finished (27-68 ms, growing with the
    table). Switching off sequential scans alone was not enough: it then read the whole table
    through an index into a hash join (430 ms). So sequential scans, sorts, hash and merge joins
    are off for the block (SET LOCAL, then the previous values back), which leaves index scans
    in nested loops. SQLite needs none of this."""
    if conn.dialect.name != "postgresql":
        yield
        return
    settings = ", ".join(f"current_setting('{name}')" for name in _INDEX_ONLY)
    switches = ", ".join(f"set_config('{name}', 'off', true)" for name in _INDEX_ONLY)
    previous = conn.exec_driver_sql(f"SELECT {settings}, {switches}").one()[: len(_INDEX_ONLY)]
    try:
        yield
    finally:
        restore = ", ".join(f"set_config('{name}', %(v{i})s, true)" for i, name in enumerate(_INDEX_ONLY))
        conn.exec_driver_sql(f"SELECT {restore}", {f"v{i}": value for i, value in enumerate(previous)})


def found_in_order(query: sa.Select[Any]) -> sa.ColumnElement[bool]:
    """Whether `query`, ordered as an index reads, finds a row: its first row in that order is
    not null. The checks that keep idle workers from taking the writer lock ask this rather
    than whether a row EXISTS: PostgreSQL drops the ORDER BY and LIMIT of an EXISTS and may
    then read the table from its start for one matching row. It did for the dispatcher, with
    a generic plan and statistics taken while most messages were queued: three sequential
    scans of `messages` per check, 12 ms at 11,700 rows and growing with the table, however
    little was due (auto_explain, e2e bench)."""
    return query.limit(1).scalar_subquery().is_not(None)


def unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column`'s value in a form that no index serves: for a condition that only checks rows
    already found another way, so that the planner cannot choose it as the way in.

    The guarded writes of batches (``WHERE sid IN (…) AND status IN (…)``) find their rows by
    key. SQLite plans without statistics (Pigeon never runs ANALYZE), and then rates an equality
    on the first column of an index, such as (status, next_attempt_at), above a list of five or
    more keys. So it read every message in a status, or every pending delivery, to update a
    batch of them: each receipt batch read every message still `sent` (those whose receipt never
    comes stay there for good), each batch of callback outcomes every pending delivery (the
    whole backlog while a receiver is down). coalesce() over a NOT NULL column changes no
    value; PostgreSQL plans these on the key either way."""
    return sa.func.coalesce(column, "")


def probe_each(query: sa.Select[Any], key: sa.ColumnElement[Any], *, param: str) -> sa.Select[Any]:
    """PostgreSQL: `query`'s rows for each string in the array parameter `param`, with `key`
    equal to it: a LATERAL subquery per element over `unnest(param)`, so one probe of `key`'s
    index each, the only plan such a statement has, whatever the statistics say.

    Written as `key IN (…)`, a lookup of a batch by key was planned from the statistics, and
    those of a table that grew since its last ANALYZE (or was never analysed) led PostgreSQL to
    read far more than the batch: every part of a carrier for each batch of receipts, every
    unfinished delivery of a batch compared with every other. OFFSET 0 keeps the planner from
    flattening the subquery back into such a join."""
    from sqlalchemy.dialects.postgresql import ARRAY

    wanted = sa.func.unnest(sa.bindparam(param, type_=ARRAY(sa.String))).table_valued("key").render_derived("wanted")
    probe = query.where(key == wanted.c.key).offset(0).lateral("probe")
    return sa.select(probe).select_from(wanted.join(probe, sa.true()))


def configuration_warnings(engine: Engine) -> list[str]:
    """What in the database server's own configuration will hurt Pigeon as it runs, in words
    for the operator; nothing when all is well.

    PostgreSQL without autovacuum: each message's row is updated at every status and each of
    its callbacks' rows when it is claimed and when it is answered, so their dead versions pile
    up, and every index lookup wades through them. Measured in the e2e bench (five minutes at
    450 messages/s, bench/RESULTS.md): 600,000 dead rows against 250,000 live in the outbox,
    and the throughput falling as the run went on.

    SQLite: a store that other users of the host can read (`pigeon.store.sqlite_files`)."""
    if is_sqlite(engine):
        path = sqlite_files.store_file(engine.url.database)
        return sqlite_files.exposure_warnings(path) if path is not None else []
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar()
    if autovacuum == "on":
        return []
    return [
        "PostgreSQL's autovacuum is off. Pigeon updates every message and its status callbacks "
        "several times, so their old row versions pile up and sending slows down as the tables "
        "grow. Turn autovacuum on, or VACUUM the messages and webhook_deliveries tables often."
    ]


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot for everything read inside it.
    `StoreUnavailable` when the database cannot be reached or the connection is lost."""
    with connect(engine) as conn, _unavailable_when_lost(), conn.begin():
        yield conn


@contextmanager
def lookup(engine: Engine) -> Iterator[Connection]:
    """Reads that need no common snapshot (independent point lookups, each answer checked on
    its own). On PostgreSQL they run in autocommit: a read transaction's BEGIN and COMMIT are
    two round trips to the server, as many as the four lookups of a message create together
    cost it in CPU (measured: 1.08 ms against 0.70 ms for four reads).

    On SQLite each thread keeps one connection for its lookups, outside any transaction (the
    driver runs each SELECT as its own read): checking a connection out of the pool, BEGIN and
    the ROLLBACK at its return cost more CPU than the four lookups of a message create
    (profiled: about a sixth of an API process's CPU). A statement that opens a transaction on
    it (SQLAlchemy begins one on a first `execute`) has it ended when the lookup is over."""
    if is_sqlite(engine):
        conn = _sqlite_lookup_connection(engine)
        try:
            with _unavailable_when_lost():
                yield conn
        finally:
            _LOOKUPS[engine].release(conn)
        return
    with connect(engine) as conn, _unavailable_when_lost():
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


class _LookupConnections:
    """Each thread's lookup connection to one SQLite engine (see `lookup`)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._guard = threading.Lock()
        self._all: set[Connection] = set()

    def get(self, engine: Engine) -> Connection:
        conn: Connection | None = self._local.__dict__.get("conn")
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = connect(engine)
            with self._guard:
                self._all.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """After a lookup: end a transaction it opened; a connection in doubt is replaced."""
        try:
            if not conn.invalidated and conn.in_transaction():
                conn.rollback()
        except Exception:
            self.discard()
            return
        if conn.invalidated:
            self.discard()

    def discard(self) -> None:
        conn: Connection | None = self._local.__dict__.pop("conn", None)
        if conn is not None:
            with self._guard:
                self._all.discard(conn)
            conn.close()

    def close_all(self) -> None:
        """At dispose: every thread's connection goes back to the pool, which then closes it."""
        with self._guard:
            conns, self._all = self._all, set()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # a connection of a thread that is gone: nothing left to free
                continue


_LOOKUPS: weakref.WeakKeyDictionary[Engine, _LookupConnections] = weakref.WeakKeyDictionary()


def _sqlite_lookup_connection(engine: Engine) -> Connection:
    lookups = _LOOKUPS.get(engine)
    if lookups is None:
        lookups = _LOOKUPS.setdefault(engine, _LookupConnections())
    return lookups.get(engine)


def close_lookups(engine: Engine) -> None:
    lookups = _LOOKUPS.get(engine)
    if lookups is not None:
        lookups.close_all()


class Database:
    """The store as the edges see it: read and write transactions over one engine.

    Entry points hold a Database; use cases receive the Connection it yields.
    """

    def __init__(self, engine: Engine, *, replica: Engine | None = None) -> None:
        from pigeon.store.replica import Replica  # it reads through this module

        self.engine = engine
        self.replica = Replica(replica) if replica is not None else None

    @classmethod
    def from_url(cls, url: str, *, replica_url: str | None = None) -> Database:
        # The replica's connections are checked as they leave the pool: a replica that
        # restarted is then found out before a read, which goes to the primary instead.
        try:
            primary = create_engine(url)
        except UnusableUrl as exc:
            raise UnusableUrl(f"the database URL: {exc}") from exc
        try:
            replica = create_engine(replica_url, pool_size=4, ping_always=True) if replica_url else None
        except UnusableUrl as exc:
            primary.dispose()
            raise UnusableUrl(f"the replica's database URL: {exc}") from exc
        return cls(primary, replica=replica)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    def read(self) -> AbstractContextManager[Connection]:
        return read(self.engine)

    def write(self) -> AbstractContextManager[Connection]:
        return write(self.engine)

    def history(self) -> AbstractContextManager[Connection]:
        """A read of history (listings, exports, logs, the doctor's searches): on the read
        replica when there is one (pigeon/store/replica.py), else as `read`."""
        return self.replica.read(self.engine) if self.replica is not None else read(self.engine)

    def lookup(self) -> AbstractContextManager[Connection]:
        return lookup(self.engine)

    def transact(self, fn: Callable[[Connection], R], *, conflict_retries: int = 0) -> R:
        """Run `fn` in a write transaction, combined with this process's other writes while
        they are being combined (`pigeon.store.combined`); its result once committed.
        `conflict_retries`: see `pigeon.store.combined.transact`."""
        from pigeon.store.combined import transact  # that module builds on this one

        return transact(self.engine, fn, conflict_retries=conflict_retries)

    def ping(self) -> bool:
        """Whether the store answers a read of a table (on SQLite, ``SELECT 1`` alone never
        opens the file) and this process's writes reach it (`pigeon.store.write_health`):
        what GET /healthz answers. No write of its own, which would queue with the others."""
        if write_health.of(self.engine).failing():
            return False
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1 FROM accounts LIMIT 1").all()
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        close_lookups(self.engine)
        self.engine.dispose()
        if self.replica is not None:
            self.replica.engine.dispose()


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database every `interval` seconds, in a thread
    of its own and without the writer lock (a PASSIVE checkpoint never blocks writers or
    readers; it copies what it can), so that commits do not do it while holding the lock."""

    def __init__(self, engine: Engine, *, interval: float = 0.5) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not is_sqlite(self._engine):
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                # On the driver's connection: outside any transaction, which a checkpoint needs.
                raw = self._engine.raw_connection()
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
                finally:
                    raw.close()
            except Exception:  # the next round tries again; commits checkpoint as a fallback
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
