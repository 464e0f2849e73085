"""Combined writes (`pigeon.store.combined`) on a real SQLite file: each caller's function is
committed before the caller gets its result, functions queued together share one
transaction, and one that fails undoes only its own writes. On PostgreSQL nothing is combined."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.combined import WriteCombiner, combining, transact, transact_async
from pigeon.store.engine import Database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'combined.db'}")
    with database.write() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE probe_child (k TEXT NOT NULL REFERENCES probe (k))")
    yield database
    database.dispose()


def _put(key: str, value: int = 1) -> Callable[[Connection], str]:
    def fn(conn: Connection) -> str:
        conn.exec_driver_sql("INSERT INTO probe (k, v) VALUES (?, ?)", (key, value))
        return key

    return fn


def _rows(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {k: v for k, v in conn.exec_driver_sql("SELECT k, v FROM probe").all()}


def _committed_elsewhere(db: Database, key: str) -> bool:
    """Whether another connection sees `key` (so it is committed, not only written)."""
    with db.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM probe WHERE k = ?", (key,)).scalar() == 1


def _queue_behind(combiner: WriteCombiner, fns: list[Callable[[Connection], Any]]) -> tuple[list[Any], Any]:
    """Run `fns` so that all but the first are queued while the first one's transaction is
    open: the first runs alone, the rest together in the next transaction. (results or
    exceptions in order, the first's result)."""
    inside, release = threading.Event(), threading.Event()

    def first(conn: Connection) -> str:
        inside.set()
        assert release.wait(10)
        return "first"

    results: list[Any] = [None] * len(fns)

    def call(i: int) -> None:
        try:
            results[i] = combiner.call(fns[i])
        except Exception as exc:
            results[i] = exc

    with ThreadPoolExecutor(len(fns) + 1) as pool:
        head = pool.submit(combiner.call, first)
        assert inside.wait(10)
        calls = [pool.submit(call, i) for i in range(len(fns))]
        deadline = time.monotonic() + 10
        while combiner._queue.qsize() < len(fns):  # every one queued behind the open transaction
            assert time.monotonic() < deadline
            time.sleep(0.001)
        release.set()
        for c in calls:
            c.result(timeout=10)
        return results, head.result(timeout=10)


def test_functions_queued_together_share_one_transaction(sqlite_db: Database) -> None:
    with combining(sqlite_db.engine) as combiner:
        assert combiner is not None
        results, head = _queue_behind(combiner, [_put(f"k{i}", i) for i in range(5)])
        assert head == "first"
        assert results == [f"k{i}" for i in range(5)]
        assert (combiner.transactions, combiner.functions) == (2, 6)
    assert _rows(sqlite_db) == {f"k{i}": i for i in range(5)}


def test_a_failing_function_undoes_only_its_own_writes(sqlite_db: Database) -> None:
    def half_then_fail(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO probe (k, v) VALUES ('half', 1)")
        conn.exec_driver_sql("INSERT INTO probe (k, v) VALUES ('a', 2)")  # 'a' is taken: fails

    with combining(sqlite_db.engine) as combiner:
        assert combiner is not None
        results, _ = _queue_behind(combiner, [_put("a"), half_then_fail, _put("b")])
        assert results[0] == "a" and results[2] == "b"
        assert isinstance(results[1], sa.exc.IntegrityError)
        assert combiner.transactions == 2
    assert _rows(sqlite_db) == {"a": 1, "b": 1}  # nothing of 'half'


def test_a_failed_commit_fails_every_caller_and_writes_nothing(sqlite_db: Database) -> None:
    def orphan_child(conn: Connection) -> None:
        # A foreign key checked at COMMIT: the statements succeed, the commit fails.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.exec_driver_sql("INSERT INTO probe_child (k) VALUES ('nobody')")

    with combining(sqlite_db.engine) as combiner:
        assert combiner is not None
        results, _ = _queue_behind(combiner, [_put("x"), orphan_child, _put("y")])
        assert all(isinstance(r, sa.exc.IntegrityError) for r in results), results
        assert combiner.call(_put("after")) == "after"  # the combiner goes on
    assert _rows(sqlite_db) == {"after": 1}


def test_the_result_comes_after_the_commit(sqlite_db: Database) -> None:
    seen: list[bool] = []

    def put_and_look(conn: Connection) -> str:
        conn.exec_driver_sql("INSERT INTO probe (k, v) VALUES ('c', 1)")
        seen.append(_committed_elsewhere(sqlite_db, "c"))
        return "c"

    with combining(sqlite_db.engine):
        assert transact(sqlite_db.engine, put_and_look) == "c"
        assert seen == [False]  # not visible while the function ran
        assert _committed_elsewhere(sqlite_db, "c")  # visible once the caller has its result


def test_a_write_inside_a_write_is_refused_not_deadlocked(sqlite_db: Database) -> None:
    def nested(conn: Connection) -> None:
        sqlite_db.transact(_put("inner"))

    with combining(sqlite_db.engine):
        with pytest.raises(RuntimeError, match="inside another"):
            sqlite_db.transact(nested)
        with sqlite_db.write(), pytest.raises(RuntimeError, match="inside another"):
            sqlite_db.transact(_put("inner"))
    assert _rows(sqlite_db) == {}


def test_entry_points_share_one_combiner_until_the_last_leaves(sqlite_db: Database) -> None:
    with combining(sqlite_db.engine) as outer:
        with combining(sqlite_db.engine) as inner:
            assert inner is outer
        assert outer is not None and outer.running
        sqlite_db.transact(_put("shared"))
        assert outer.functions == 1
    assert not outer.running
    assert sqlite_db.transact(_put("alone")) == "alone"  # after it stopped: a transaction of its own
    assert outer.functions == 1
    assert _rows(sqlite_db) == {"shared": 1, "alone": 1}


def test_stop_runs_what_is_queued(sqlite_db: Database) -> None:
    combiner = WriteCombiner(sqlite_db.engine)
    combiner.start()
    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(combiner.call, _put(f"q{i}")) for i in range(20)]
        combiner.stop()
        assert sorted(c.result(timeout=10) for c in calls) == sorted(f"q{i}" for i in range(20))
    assert len(_rows(sqlite_db)) == 20


def test_callers_on_an_event_loop(sqlite_db: Database) -> None:
    async def main(prefix: str) -> list[str]:
        return list(await asyncio.gather(*(transact_async(sqlite_db.engine, _put(f"{prefix}{i}")) for i in range(10))))

    with combining(sqlite_db.engine) as combiner:
        assert combiner is not None
        assert asyncio.run(main("e")) == [f"e{i}" for i in range(10)]
        assert combiner.transactions < 10  # queued at once, so combined
    assert asyncio.run(main("f")) == [f"f{i}" for i in range(10)]  # no combiner: each alone
    assert len(_rows(sqlite_db)) == 20


@pytest.mark.postgres
def test_nothing_is_combined_on_postgres(pg_template: str) -> None:
    from tests.conftest import drop_pg_database, make_pg_database

    name, url = make_pg_database(pg_template)
    db = Database.from_url(url)
    try:
        with combining(db.engine) as combiner:
            assert combiner is None
            assert db.transact(lambda conn: conn.exec_driver_sql("SELECT 41 + 1").scalar()) == 42
    finally:
        db.dispose()
        drop_pg_database(name)


def test_a_caller_that_gave_up_is_skipped_and_the_combiner_goes_on(sqlite_db: Database) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        inside.set()
        assert release.wait(10)

    async def give_up() -> None:
        task = asyncio.ensure_future(transact_async(sqlite_db.engine, _put("abandoned")))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with combining(sqlite_db.engine) as combiner, ThreadPoolExecutor(1) as pool:
        assert combiner is not None
        held = pool.submit(combiner.call, hold)
        assert inside.wait(10)
        asyncio.run(give_up())  # queued behind `hold`, then cancelled
        release.set()
        held.result(timeout=10)
        assert combiner.call(_put("later")) == "later"
    assert _rows(sqlite_db) == {"later": 1}


def test_a_failure_outside_the_transaction_fails_its_callers_not_the_thread(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pigeon.store.combined as combined_module
    import pigeon.store.engine as engine_module

    real = engine_module.writer_lock
    failures = [OSError("lock file gone")]

    def flaky(engine: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(engine)

    monkeypatch.setattr(combined_module, "writer_lock", flaky)
    with combining(sqlite_db.engine) as combiner:
        assert combiner is not None
        with pytest.raises(OSError, match="lock file gone"):
            combiner.call(_put("first"))
        assert combiner.call(_put("second")) == "second"
    assert _rows(sqlite_db) == {"second": 1}


class _Aborted(Exception):
    """What psycopg raises for a transaction PostgreSQL aborted: its SQLSTATE on `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _aborting(times: int, sqlstate: str, key: str = "k") -> tuple[Callable[[Connection], str], list[int]]:
    """A write that is aborted with `sqlstate` its first `times` runs, then goes through."""
    runs: list[int] = []

    def fn(conn: Connection) -> str:
        runs.append(1)
        conn.exec_driver_sql("INSERT INTO probe (k, v) VALUES (?, ?)", (key, len(runs)))
        if len(runs) <= times:
            raise sa.exc.OperationalError("INSERT", {}, _Aborted(sqlstate))
        return "done"

    return fn, runs


def test_a_transaction_aborted_by_a_conflict_runs_again_when_asked(sqlite_db: Database) -> None:
    fn, runs = _aborting(2, "40P01")  # deadlock detected, twice
    assert transact(sqlite_db.engine, fn, conflict_retries=3) == "done"
    assert len(runs) == 3 and _rows(sqlite_db) == {"k": 3}  # the aborted runs wrote nothing

    fn, runs = _aborting(1, "40001", "a")  # serialization failure, not asked to run again
    with pytest.raises(sa.exc.OperationalError):
        sqlite_db.transact(fn)
    assert len(runs) == 1

    fn, runs = _aborting(5, "40P01", "b")  # more conflicts than it may take
    with pytest.raises(sa.exc.OperationalError):
        sqlite_db.transact(fn, conflict_retries=2)
    assert len(runs) == 3

    fn, runs = _aborting(1, "23505", "c")  # a unique violation is no conflict: raised at once
    with pytest.raises(sa.exc.OperationalError):
        sqlite_db.transact(fn, conflict_retries=3)
    assert len(runs) == 1
