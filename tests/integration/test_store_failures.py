"""How the store fails: out of reach, a connection lost, a statement refused.

- A store that cannot be reached (no server on the port, a directory that is gone) is
  `StoreUnavailable` from every way in: nothing was done, so callers may say so and retry.
- So is a SQLite store with no room left (a full disk), or locked by another program past the
  busy timeout, at any point: SQLite commits atomically.
- A connection lost before the commit is `StoreUnavailable` too, and the pool does not hand
  the dead connection out again, whether SQLAlchemy or a `Prepared` statement found it dead.
  One lost during the COMMIT is not: whether that commit took effect is unknown.
- A refused statement's error names its SQL but never its values (they can be secrets).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.errors import StoreUnavailable
from pigeon.store import accounts as account_store
from pigeon.store.batch import write_isolating
from pigeon.store.engine import Database, normalise_url
from pigeon.store.prepared import insert_many
from pigeon.store.schema import upgrade
from pigeon.store.tables import accounts
from pigeon.testing import FrozenClock
from tests.acceptance.conftest import free_port
from tests.integration.http_client import SENDER, make_api
from tests.integration.locked_sqlite import locked_sqlite

SECRET = "0123456789abcdef-not-for-logs"


def _account(sid: str) -> dict[str, object]:
    now = FrozenClock().now()
    return {
        "sid": sid,
        "owner_account_sid": sid,
        "friendly_name": "failures",
        "auth_token": SECRET,
        "status": "active",
        "type": "Full",
        "date_created": now,
        "date_updated": now,
    }


def test_a_refused_statement_names_its_sql_but_not_its_values(db: Database) -> None:
    sid = "AC" + "1" * 32
    with db.write() as conn:
        insert_many(conn, accounts, [_account(sid)])
    for insert in (
        lambda conn: conn.execute(accounts.insert().values(**_account(sid))),  # through SQLAlchemy
        lambda conn: insert_many(conn, accounts, [_account(sid)]),  # on the driver's cursor
    ):
        with pytest.raises(sa.exc.IntegrityError) as refused:
            with db.write() as conn:
                insert(conn)
        text = str(refused.value)
        assert "INSERT INTO accounts" in text
        assert SECRET not in text  # (PostgreSQL's own words name the duplicate key: the SID)


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A store out of reach: a SQLite file in a directory that is gone, a PostgreSQL port that
    nothing listens on."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gone' / 'pigeon.db'}"
    else:
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    db = Database.from_url(url)
    yield db
    db.dispose()


def test_a_store_out_of_reach_is_unavailable_from_every_way_in(unreachable: Database) -> None:
    ways: list[AbstractContextManager[Connection]] = [unreachable.read(), unreachable.lookup(), unreachable.write()]
    for way in ways:
        with pytest.raises(StoreUnavailable, match=r"could not be reached|cannot be opened"):
            with way as conn:
                conn.exec_driver_sql("SELECT 1")
    with pytest.raises(StoreUnavailable):
        unreachable.transact(lambda conn: None)


def test_a_group_commit_fails_all_at_once_when_the_store_is_out_of_reach(unreachable: Database) -> None:
    """Not one item after the other: each would try to connect on its own (and wait for it)."""
    written: list[int] = []
    attempts: list[int] = []
    sa.event.listen(unreachable.engine, "do_connect", lambda *args: attempts.append(1))
    outcomes, committed = write_isolating(
        unreachable.engine, lambda conn, items: written.extend(items), [1, 2, 3], name="test"
    )
    assert committed == 0 and written == []
    assert all(isinstance(exc, StoreUnavailable) for exc in outcomes) and len(outcomes) == 3
    assert len(attempts) <= 1  # SQLite does not get as far as connecting: its lock file fails first


# -- SQLite full ---------------------------------------------------------------------------------


@pytest.fixture
def full_sqlite(tmp_path: Path) -> Iterator[Database]:
    """A SQLite store with no room for more pages: what a full disk looks like to SQLite
    (SQLITE_FULL), made with max_page_count instead of a disk."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    upgrade(db.engine)
    db.dispose()

    @sa.event.listens_for(db.engine, "connect")
    def _no_room(dbapi_conn: Any, _record: Any) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    yield db
    db.dispose()


def test_a_full_sqlite_store_is_unavailable_and_keeps_nothing(full_sqlite: Database) -> None:
    rows = [_account(f"AC{i:032d}") for i in range(200)]
    with pytest.raises(StoreUnavailable, match="the database is full"):
        with full_sqlite.write() as conn:
            insert_many(conn, accounts, rows)
    with full_sqlite.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one() == 0


def _disk_error() -> sqlite3.OperationalError:
    """What the stdlib driver raises when the disk fails under SQLite (an EIO on write): a
    real one needs a failing device, so the test makes the driver's own error."""
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorname = "SQLITE_IOERR_WRITE"
    error.sqlite_errorcode = 778
    return error


@pytest.mark.parametrize("when", ["statement", "commit"])
def test_a_disk_error_makes_the_sqlite_store_unavailable_and_keeps_nothing(
    tmp_path: Path, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_IOERR at a statement leaves nothing written: 503 and a retry. At the COMMIT it
    stays an error of unknown outcome (a 500): the log's frames may have been written and only
    their sync have failed, and a restart would then find the transaction committed. Here the
    COMMIT never reached the driver, so nothing is there either way."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    upgrade(db.engine)
    dialect = db.engine.dialect
    failing = [True]
    # Where the driver is called: an error raised there is the driver's, as SQLAlchemy sees it.
    name = {"statement": "do_execute", "commit": "do_commit"}[when]
    real = getattr(dialect, name)

    def failing_driver(*args: Any, **kw: Any) -> Any:
        statement = str(args[1]) if when == "statement" else ""
        if failing[0] and (when == "commit" or statement.startswith("INSERT INTO accounts")):
            raise _disk_error()
        return real(*args, **kw)

    monkeypatch.setattr(dialect, name, failing_driver)
    try:
        expected = (
            pytest.raises(StoreUnavailable, match="could not be read or written: disk I/O error")
            if when == "statement"
            else pytest.raises(sa.exc.OperationalError, match="disk I/O error")
        )
        with expected:
            with db.write() as conn:
                conn.execute(accounts.insert().values(**_account("AC" + "7" * 32)))
        failing[0] = False
        with db.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one() == 0
        with db.write() as conn:  # the disk back: the same write goes through
            insert_many(conn, accounts, [_account("AC" + "7" * 32)])
    finally:
        db.dispose()


def test_a_sqlite_store_locked_by_another_program_is_unavailable(tmp_path: Path) -> None:
    """Pigeon's writers queue on a lock of their own; a program that is not Pigeon (the sqlite3
    shell, a backup tool) holding the write lock past the busy timeout makes it unavailable."""
    db, other = locked_sqlite(tmp_path)
    try:
        with pytest.raises(StoreUnavailable, match="locked by another writer"):
            with db.write() as conn:
                insert_many(conn, accounts, [_account("AC" + "5" * 32)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    with db.write() as conn:  # and usable again once the other program lets go
        insert_many(conn, accounts, [_account("AC" + "5" * 32)])
    db.dispose()


# -- connections lost (PostgreSQL: a server can end a session; a SQLite file cannot) ------------


def _kill(db: Database, conn: Connection) -> None:
    """End `conn`'s session from the server's side, as a restart or an administrator would."""
    pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    url = normalise_url(db.engine.url.render_as_string(hide_password=False))
    admin = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            deadline = time.monotonic() + 5
            while other.exec_driver_sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}").scalar():
                assert time.monotonic() < deadline, "the session did not end"
                time.sleep(0.02)
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_connection_lost_in_a_read_is_unavailable_and_not_reused(pg: Database) -> None:
    with pytest.raises(StoreUnavailable, match="lost"):
        with pg.read() as conn:
            _kill(pg, conn)
            conn.exec_driver_sql("SELECT 1")
    with pg.read() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


@pytest.mark.postgres
def test_a_connection_lost_under_a_prepared_statement_is_unavailable_and_not_reused(pg: Database) -> None:
    """`Prepared` runs on the driver's cursor, past SQLAlchemy's own check for lost
    connections: it must hand the error to that check, or the pool keeps the dead connection."""
    sid = "AC" + "2" * 32
    with pg.write() as conn:
        insert_many(conn, accounts, [_account(sid)])
    with pytest.raises(StoreUnavailable, match="lost"):
        with pg.lookup() as conn:
            _kill(pg, conn)
            account_store.get_account(conn, sid)
    for _ in range(3):  # a fresh connection each time, not the dead one back from the pool
        with pg.lookup() as conn:
            account = account_store.get_account(conn, sid)
            assert account is not None and account["sid"] == sid


@pytest.mark.postgres
def test_a_connection_lost_in_a_write_before_its_commit_is_unavailable(pg: Database) -> None:
    sid = "AC" + "3" * 32
    with pytest.raises(StoreUnavailable, match="lost"):
        with pg.write() as conn:
            _kill(pg, conn)
            insert_many(conn, accounts, [_account(sid)])
    with pg.read() as conn:
        assert account_store.get_account(conn, sid) is None


@pytest.mark.postgres
def test_a_connection_lost_in_a_write_while_the_server_refuses_new_ones_is_unavailable(pg: Database) -> None:
    """A restart or a failover ends the session and refuses connections for a while: the
    write's error must still be `StoreUnavailable` (nothing written, try again), not the
    refusal of a connection that nothing should have asked for once this one was lost."""
    sid = "AC" + "6" * 32
    name = pg.engine.url.database
    url = normalise_url(pg.engine.url.render_as_string(hide_password=False))
    admin = sa.create_engine(
        sa.make_url(url).set(database="postgres"), poolclass=sa.NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with pytest.raises(StoreUnavailable, match="lost"):
            with pg.write() as conn:
                pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                with admin.connect() as other:
                    other.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                    other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
                insert_many(conn, accounts, [_account(sid)])
    finally:
        with admin.connect() as other:
            other.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
    with pg.read() as conn:
        assert account_store.get_account(conn, sid) is None


@pytest.mark.postgres
def test_a_connection_lost_at_the_commit_is_not_called_unavailable(pg: Database) -> None:
    """The COMMIT may or may not have reached the server: `StoreUnavailable` would promise that
    nothing was written."""
    sid = "AC" + "4" * 32
    with pytest.raises(sa.exc.DBAPIError) as lost:
        with pg.write() as conn:
            insert_many(conn, accounts, [_account(sid)])
            _kill(pg, conn)
    assert not isinstance(lost.value, StoreUnavailable)
    with pg.read() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_a_postgresql_connection_notices_a_silent_server_and_the_server_a_silent_client(db: Database) -> None:
    """Without keepalives, a user timeout and a connect timeout, a connection to a server gone
    silent (a partition, a failover) waited for hours; without the server's idle-in-transaction
    timeout, a worker cut off inside a claim kept its row locks and stopped every other
    worker's claims (see POSTGRES_CONNECT_ARGS)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's connection settings")
    with db.engine.connect() as conn:
        timeout = conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar_one()
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert timeout == "5min"
    assert (params["connect_timeout"], params["keepalives"], params["tcp_user_timeout"]) == ("10", "1", "30000")
    assert (params["keepalives_idle"], params["keepalives_interval"], params["keepalives_count"]) == ("30", "10", "3")
    # A value in the URL's query is the operator's: it wins.
    own = Database.from_url(db.engine.url.render_as_string(hide_password=False) + "?connect_timeout=3")
    try:
        with own.engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["connect_timeout"] == "3" and params["keepalives"] == "1"
    finally:
        own.dispose()


def test_healthz_says_the_store_unreachable_while_writes_fail_for_want_of_it(tmp_path: Path) -> None:
    """README: /healthz answers 503 `store unreachable` when the store cannot take writes. A
    store locked by another program answered 200 while every send got 503 (SELECT 1 never
    opens a SQLite file); /healthz now goes by the outcome of the process's last write."""
    db, other = locked_sqlite(tmp_path)
    other.execute("ROLLBACK")
    api = make_api(db, f"sqlite:///{tmp_path / 'pigeon.db'}")
    send: tuple[str, str, dict[str, Any]] = (
        "POST",
        f"{api.base}/Messages.json",
        {"data": {"To": "+14155552671", "From": SENDER, "Body": "hi"}},
    )
    health: tuple[str, str, dict[str, Any]] = ("GET", "/healthz", {})
    try:
        assert [r.status_code for r in api.call(health)] == [200]
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        before, sent, after = api.call(health, send, health)
        assert (before.status_code, sent.status_code) == (200, 503)
        assert (after.status_code, after.json()) == (503, {"status": "store unreachable"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    sent, after = api.call(send, health)  # a write that succeeds makes it healthy again
    assert (sent.status_code, after.status_code) == (201, 200)
    db.dispose()


def test_healthz_reads_a_table(tmp_path: Path) -> None:
    """A database without Pigeon's tables (the file replaced, a URL naming another database)
    answered SELECT 1 all the same."""
    path = tmp_path / "pigeon.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE something_else (x INTEGER)")
    db = Database.from_url(f"sqlite:///{path}")
    try:
        assert db.ping() is False
    finally:
        db.dispose()
