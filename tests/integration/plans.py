"""PostgreSQL's plans for the statements a block of code runs, for tests that build stale
statistics and check that a statement still reads its index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@contextmanager
def postgresql_plans(engine: Engine, wanted: Callable[[str], bool]) -> Iterator[list[tuple[str, str]]]:
    """(statement, EXPLAIN text) for each statement that `wanted` picks among those run on
    `engine` inside the block (one by one, not executemany), explained with its parameters
    just before it runs."""
    plans: list[tuple[str, str]] = []

    def explain(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and wanted(statement):
            with cursor.connection.cursor() as c:
                c.execute("EXPLAIN " + statement, parameters)
                plans.append((statement, "\n".join(row[0] for row in c.fetchall())))

    sa.event.listen(engine, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        sa.event.remove(engine, "before_cursor_execute", explain)
