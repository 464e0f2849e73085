"""Hot SELECTs, compiled once per dialect and run straight on the driver's cursor.

Every message create reads its account, its sender's number, any opt-out and any recent
duplicate: four point lookups by index that SQLite answers in a few microseconds each. Run
through `Connection.execute`, each still costs SQLAlchemy's per-execution machinery (cache
lookup, execution context, result metadata, row mapping), which profiling showed to be the
largest single cost of an accept, larger than HTTP parsing. A `Prepared` statement keeps what
SQLAlchemy would redo every time (the SQL text, the order and processors of its parameters,
the processors of its columns) and runs on the DBAPI cursor of the caller's connection, so it
reads inside the caller's transaction like any other statement.

It is for simple SELECTs whose parameters are plain bind parameters: what it gives up is
SQLAlchemy's cursor events (nothing in Pigeon listens to them on these reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

Row = dict[str, Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order, for qmark/format drivers
    defaults: dict[str, Any]  # values fixed in the statement (LIMIT 1)
    bind: Mapping[str, Callable[[Any], Any]]
    keys: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]


class Prepared:
    def __init__(self, stmt: sa.Select[Any]) -> None:
        self.stmt = stmt
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.stmt.compile(dialect=dialect)
        bind: dict[str, Callable[[Any], Any]] = {}
        for name, param in compiled.binds.items():
            processor = param.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                bind[name] = processor
        columns = list(self.stmt.selected_columns)
        positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        return _Compiled(
            sql=compiled.string,
            positional=positional,
            defaults={name: param.value for name, param in compiled.binds.items() if not param.required},
            bind=bind,
            keys=tuple(str(c.key) for c in columns),
            results=tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns),
        )

    def first(self, conn: Connection, params: dict[str, Any]) -> Row | None:
        """The first row as a dict (column key -> value, as Connection.execute gives), or None."""
        dialect = conn.dialect
        c = self._compiled.get(dialect.name)
        if c is None:
            c = self._compiled[dialect.name] = self._compile(dialect)
        values = {**c.defaults, **params}
        for name, processor in c.bind.items():
            if name in values:
                values[name] = processor(values[name])
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if c.positional is not None:
                cursor.execute(c.sql, tuple(values[n] for n in c.positional))
            else:
                cursor.execute(c.sql, values)
            raw = cursor.fetchone()
        finally:
            cursor.close()
        if raw is None:
            return None
        return {
            key: (processor(value) if processor is not None else value)
            for key, processor, value in zip(c.keys, c.results, raw, strict=True)
        }
