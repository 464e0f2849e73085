"""Hot statements, compiled once per dialect and run straight on the driver's cursor.

Every message create reads its account, then its sender's number with any opt-out and any
recent duplicate (store/send_lookup.py): point lookups by index that SQLite answers in a few
microseconds each. Run
through `Connection.execute`, each still costs SQLAlchemy's per-execution machinery (cache
lookup, execution context, result metadata, row mapping), which profiling showed to be the
largest single cost of an accept, larger than HTTP parsing. A `Prepared` statement keeps what
SQLAlchemy would redo every time (the SQL text, the order and processors of its parameters,
the processors of its columns) and runs on the DBAPI cursor of the caller's connection, so it
runs inside the caller's transaction like any other statement.

The workers' writes are the other half. On SQLite they run with the database's single writer
lock held, and profiling a batch of them (bench/stages.py) found about three fifths of the
time inside the lock spent in Python around the statements, not in SQLite: a guarded UPDATE
… RETURNING of thirty messages cost 95 µs a row through SQLAlchemy and 45 µs on the cursor;
a timeline row, 30 µs and 10 µs. So on SQLite `Prepared.all` and `Prepared.run` (UPDATE,
DELETE, SELECT, with IN lists as expanding parameters) and `insert_many` (one multi-row
INSERT per page of rows, which lets go of the GIL once per page rather than once per row)
run on the cursor too.

PostgreSQL takes the same path. There an IN list is sent as one array parameter
(``x IN (…)`` becomes ``x = ANY(%(x)b::T[])``, which PostgreSQL's parser makes of an IN list
anyway), so that a statement's text is the same whatever the list's length, and psycopg, which
prepares a statement on the server once it has run it five times, spares the server its parse
and plan. Measured in the e2e bench (two worker processes, 900 messages/s offered), before
this: SQLAlchemy's execution machinery and psycopg's executemany were about 40 % of a worker
process's CPU, and the server parsed and planned nearly every statement anew. Other dialects go
through `Connection.execute`.

What they give up is SQLAlchemy's execution context (its cursor events still fire, with
None for the context) and Python-side column defaults (no table has one; `insert_many`
checks).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

Row = dict[str, Any]

_EXPANDING = re.compile(r"__\[POSTCOMPILE_(\w+)\]")

#: Bound values one SQLite statement may carry (SQLITE_MAX_VARIABLE_NUMBER: 999 before 3.32).
_SQLITE_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999

_IN_LIST = re.compile(r"(NOT )?IN \(__\[POSTCOMPILE_(\w+)\]\)")


def _as_arrays(sql: str, binds: Mapping[str, Any], dialect: Dialect) -> str:
    """PostgreSQL: each ``IN (<list>)`` of `sql` as ``= ANY(<array>)`` (NOT IN: ``<> ALL``),
    the array cast to its element's type. Arrays go in psycopg's binary format (``%b``): its
    text format escapes every element in Python, eight times the CPU (100 rows of a timeline:
    1.7 ms against 0.2)."""

    def array(m: re.Match[str]) -> str:
        name = m.group(2)
        element = binds[name].type
        cast = "" if element._isnull else f"::{dialect.type_compiler_instance.process(element)}[]"
        return f"{'<> ALL' if m.group(1) else '= ANY'}(%({name})b{cast})"

    converted = _IN_LIST.sub(array, sql)
    if _EXPANDING.search(converted):  # an IN list written some other way
        raise sa.exc.ArgumentError(f"cannot send this list as an array: {sql}")
    return converted


def _execute(conn: Connection, cursor: Any, sql: str, args: Any) -> None:
    """cursor.execute, with the driver's errors handled as SQLAlchemy handles its own
    statements' (`Connection._handle_dbapi_exception`): raised as SQLAlchemy's exceptions (an
    IntegrityError is `sqlalchemy.exc.IntegrityError`, as callers of Connection.execute
    expect), their parameters left out of the message as the engine says (they can hold
    secrets), and a connection found lost invalidated, so that the pool does not hand it out
    again. With SQLAlchemy's cursor events too, so that what listens to them (query-plan
    tests, profiling) sees these statements. The events get no execution context (None)."""
    events = conn._has_events or conn.engine._has_events
    if events:
        for before in conn.dispatch.before_cursor_execute:
            sql, args = before(conn, cursor, sql, args, None, False)
    try:
        cursor.execute(sql, args)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)
    if events:
        conn.dispatch.after_cursor_execute(conn, cursor, sql, args, None, False)


@dataclass
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order, for qmark/format drivers
    defaults: dict[str, Any]  # values fixed in the statement (LIMIT 1, IN of a literal tuple)
    bind: Mapping[str, Callable[[Any], Any]]
    keys: tuple[str, ...]
    #: the columns whose values need converting, with their processor: a message row has 33
    #: columns and nine of them do
    processed: tuple[tuple[str, Callable[[Any], Any]], ...]
    expanding: frozenset[str]  # parameters that are lists (IN), rendered one marker per item
    #: PostgreSQL: the lists are sent as one array parameter each, not expanded (module doc)
    arrays: bool = False
    #: a list of tuples (``(a, b) IN (…)``), which SQLAlchemy expands its own way
    tuples: bool = False
    #: the SQL for each combination of list lengths met so far
    expanded: dict[tuple[int, ...], str] = field(default_factory=dict)


class Prepared:
    def __init__(self, stmt: sa.Select[Any] | sa.Update | sa.Delete) -> None:
        self.stmt = stmt
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.stmt.compile(dialect=dialect)
        bind: dict[str, Callable[[Any], Any]] = {}
        for name, param in compiled.binds.items():
            processor = param.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                bind[name] = processor
        columns = list(getattr(self.stmt, "exported_columns", ()))
        positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        keys = tuple(str(c.key) for c in columns)
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        tuples = any(isinstance(p.type, sa.types.TupleType) for p in compiled.binds.values() if p.expanding)
        sql, arrays = compiled.string, dialect.name == "postgresql" and not tuples
        if arrays:
            sql = _as_arrays(sql, compiled.binds, dialect)
        return _Compiled(
            sql=sql,
            positional=positional,
            defaults={name: param.value for name, param in compiled.binds.items() if not param.required},
            bind=bind,
            keys=keys,
            processed=tuple((k, p) for k, p in zip(keys, results, strict=True) if p is not None),
            expanding=frozenset(_EXPANDING.findall(compiled.string)),
            arrays=arrays,
            tuples=tuples,
        )

    def _for(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is None:
            c = self._compiled[dialect.name] = self._compile(dialect)
        return c

    def _on_cursor(self, conn: Connection, params: Mapping[str, Any], *, any_dialect: bool = False) -> bool:
        """Whether this statement runs on the driver's cursor here: on SQLite and PostgreSQL,
        and for `first` on any dialect when it has no list parameter (see the module doc). On
        SQLite an empty list leaves it to SQLAlchemy, which renders an IN of nothing its own
        way; on PostgreSQL an empty array already means what an empty IN does. A list of
        tuples is left to SQLAlchemy everywhere."""
        compiled = self._for(conn.dialect)
        if compiled.tuples:
            return False
        if compiled.arrays:
            return True
        if conn.dialect.name != "sqlite":
            return any_dialect and not compiled.expanding
        return all(len(params[n]) for n in compiled.expanding if n in params)

    def _arguments(self, c: _Compiled, params: Mapping[str, Any]) -> tuple[str, Any]:
        values = {**c.defaults, **params}
        try:
            for name, processor in c.bind.items():
                if name in values:
                    value = values[name]
                    values[name] = [processor(v) for v in value] if name in c.expanding else processor(value)
        except Exception as exc:  # as SQLAlchemy reports a value its types refuse (a naive datetime)
            raise sa.exc.StatementError(str(exc), c.sql, params, exc) from exc
        if c.positional is None:  # named parameters; on PostgreSQL, lists as arrays
            if c.arrays:
                for name in c.expanding:
                    if name in values:
                        values[name] = list(values[name])
            return c.sql, values
        if not c.expanding:
            return c.sql, tuple(values[n] for n in c.positional)
        lengths = tuple(len(values[n]) for n in c.positional if n in c.expanding)
        sql = c.expanded.get(lengths)
        if sql is None:
            if len(c.expanded) >= 1024:  # batch sizes vary little; this only bounds the worst case
                c.expanded.clear()
            sql = c.expanded[lengths] = _EXPANDING.sub(lambda m: ", ".join("?" * len(values[m.group(1)])), c.sql)
        args: list[Any] = []
        for n in c.positional:
            if n in c.expanding:
                args.extend(values[n])
            else:
                args.append(values[n])
        return sql, args

    def _row(self, c: _Compiled, raw: Sequence[Any]) -> Row:
        row = dict(zip(c.keys, raw, strict=True))
        for key, processor in c.processed:
            row[key] = processor(row[key])
        return row

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Row | None:
        """The first row as a dict (column key -> value, as Connection.execute gives), or None."""
        rows = self._fetch(conn, params, one=True)
        return rows[0] if rows else None

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Row]:
        """Every row (of a SELECT, or an UPDATE/DELETE … RETURNING) as dicts."""
        return self._fetch(conn, params, one=False)

    def _fetch(self, conn: Connection, params: Mapping[str, Any], *, one: bool) -> list[Row]:
        if not self._on_cursor(conn, params, any_dialect=one):
            result = conn.execute(self.stmt, dict(params)).mappings()
            return [dict(r) for r in (result.fetchmany(1) if one else result)]
        c = self._for(conn.dialect)
        sql, args = self._arguments(c, params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            _execute(conn, cursor, sql, args)
            raws = cursor.fetchmany(1) if one else cursor.fetchall()
        finally:
            cursor.close()
        return [self._row(c, raw) for raw in raws]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        if not self._on_cursor(conn, params):
            return int(conn.execute(self.stmt, dict(params)).rowcount)
        sql, args = self._arguments(self._for(conn.dialect), params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            _execute(conn, cursor, sql, args)
            return int(cursor.rowcount)
        finally:
            cursor.close()


@dataclass(frozen=True)
class _InsertShape:
    prefix: str  # SQLite: INSERT INTO t (a, b) VALUES; PostgreSQL: the whole statement
    #: SQLite: (?, ?), repeated for each row; None: the values go as one array per column
    #: (PostgreSQL), and the statement is `prefix` alone.
    row: str | None
    bind: tuple[Callable[[Any], Any] | None, ...]
    per_statement: int  # rows in one statement
    suffix: str = ""  # ON CONFLICT … DO UPDATE, for `insert_many(replace_on=…)`


_INSERT_SHAPES: dict[tuple[sa.Table, str, tuple[str, ...], tuple[str, ...]], _InsertShape] = {}


def _insert_shape(
    table: sa.Table, dialect: Dialect, names: tuple[str, ...], replace_on: tuple[str, ...] = ()
) -> _InsertShape:
    """SQLite: one multi-row VALUES per page of rows. PostgreSQL: one array per column (in
    binary, see `_as_arrays`), unnested in order (``INSERT … SELECT … FROM unnest(…) WITH
    ORDINALITY ORDER BY``), so that the statement's text is the same for any number of rows:
    psycopg converts a statement's placeholders in Python unless it has seen its text before (a
    multi-row VALUES it never has: that was a quarter of a worker process's CPU), and prepares
    it on the server once it has run it five times."""
    key = (table, dialect.name, names, replace_on)
    shape = _INSERT_SHAPES.get(key)
    if shape is None:
        unknown = set(names) - set(table.c.keys())
        if unknown:
            raise sa.exc.ArgumentError(f"{table.name} has no column {', '.join(sorted(unknown))}")
        columns = [table.c[n] for n in names]
        quote = dialect.identifier_preparer.quote
        listed = ", ".join(quote(c.name) for c in columns)
        into = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({listed}) "
        bind = tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
        suffix = ""
        if replace_on:  # both stores spell an upsert alike
            keys = ", ".join(quote(table.c[n].name) for n in replace_on)
            sets = ", ".join(f"{quote(c.name)} = excluded.{quote(c.name)}" for c in columns if c.key not in replace_on)
            suffix = f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        if dialect.name == "postgresql":
            arrays = ", ".join(f"%b::{dialect.type_compiler_instance.process(c.type)}[]" for c in columns)
            statement = f"{into}SELECT {listed} FROM unnest({arrays}) WITH ORDINALITY AS u({listed}, _n) ORDER BY _n"
            shape = _InsertShape(prefix=statement, row=None, bind=bind, per_statement=1000, suffix=suffix)
        else:
            shape = _InsertShape(
                prefix=f"{into}VALUES ",
                row="(" + ", ".join("?" * len(columns)) + ")",
                bind=bind,
                per_statement=max(1, min(1000, _SQLITE_MAX_VARIABLES // max(1, len(columns)))),
                suffix=suffix,
            )
        _INSERT_SHAPES[key] = shape
    return shape


@functools.cache
def _python_defaults(table: sa.Table, names: tuple[str, ...]) -> bool:
    """Whether a column left out of `names` has a default that SQLAlchemy computes in Python."""
    return any(c.default is not None or c.onupdate is not None for c in table.c if c.key not in names)


def insert_many(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, replace_on: tuple[str, ...] = ()
) -> None:
    """INSERT `rows` (dicts, column key -> value), in order. On SQLite and PostgreSQL, when
    they all have the same keys, one statement per page of rows on the driver's cursor (see
    the module doc and `_insert_shape`); otherwise an executemany through SQLAlchemy.

    `replace_on`: the columns of a unique key; a row whose key is taken replaces the other
    columns of the row that holds it (an upsert). Two rows of one call must not share a key
    (PostgreSQL refuses to change a row twice in one statement)."""
    if not rows:
        return
    first = rows[0].keys()
    names = tuple(first)
    if (
        conn.dialect.name not in ("sqlite", "postgresql")
        or _python_defaults(table, names)
        or not all(r.keys() == first for r in rows)  # SQLAlchemy has its rules for mixed rows
    ):
        if replace_on:
            raise sa.exc.ArgumentError("replace_on needs rows of one shape, on SQLite or PostgreSQL")
        conn.execute(table.insert(), [dict(r) for r in rows])
        return
    shape = _insert_shape(table, conn.dialect, names, replace_on)
    processors = list(zip(names, shape.bind, strict=True))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), shape.per_statement):
            page = rows[start : start + shape.per_statement]
            try:
                if shape.row is None:
                    args: list[Any] = [
                        [row[name] for row in page] if processor is None else [processor(row[name]) for row in page]
                        for name, processor in processors
                    ]
                else:
                    args = []
                    for row in page:
                        for name, processor in processors:
                            args.append(processor(row[name]) if processor is not None else row[name])
            except Exception as exc:  # as SQLAlchemy reports a value its types refuse
                raise sa.exc.StatementError(str(exc), shape.prefix, None, exc) from exc
            sql = shape.prefix if shape.row is None else shape.prefix + ", ".join([shape.row] * len(page))
            _execute(conn, cursor, sql + shape.suffix, args)
    finally:
        cursor.close()
