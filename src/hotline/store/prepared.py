"""Hot-path statements run straight on the driver's cursor, compiled once per dialect.

A ``Prepared`` wraps one SQLAlchemy Core statement built with bind parameters. The first
time it runs on a dialect it is compiled (SQLAlchemy renders the SQL of that dialect:
SQLite's ``?``, psycopg's ``%(name)s``) and the order of its parameters, their literal
values (``direction == 'out'``, a LIMIT) and their types' bind processors are kept; each
later run only builds the parameters and calls ``cursor.execute`` on the connection's
DBAPI connection, inside the caller's transaction. SQLAlchemy's execution path (cache key,
execution context, result object) cost the writer 40-80 µs a statement against ~11 µs in
the driver (docs/performance.md, "Cost per message"). When a connection has
``before_cursor_execute``/``after_cursor_execute`` listeners (tests watch statements that
way) the statement goes through ``Connection.execute`` instead, so they still see it.

Rows come back as the driver's tuples, with no result processing: use it only for columns
whose driver value is already the Python value (integers, text, bytes). Owns nothing but
the compiled forms. Must not touch: transactions (never BEGIN, COMMIT or ROLLBACK).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

_Bind = tuple[str, Any, Callable[[Any], Any] | None]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    #: (name, literal value or None, bind processor or None), in the SQL's order
    binds: tuple[_Bind, ...]
    #: the binds that hold literal values (the caller never passes those)
    literals: tuple[tuple[str, Any], ...]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


class Prepared:
    """One statement; ``keys`` names the columns an INSERT or UPDATE sets (its values
    come as parameters under those names)."""

    __slots__ = ("_compiled", "_keys", "statement")

    def __init__(self, statement: sa.ClauseElement, keys: Sequence[str] = ()) -> None:
        self.statement: Any = statement
        self._keys = list(keys)
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is not None:
            return c
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=self._keys)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names: Sequence[str] = compiled.positiontup if compiled.positional else list(by_name)
        binds: list[_Bind] = []
        for name in names:
            bind = by_name[name]
            literal = None if bind.required or bind.callable is not None else bind.value
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, literal, proc))
        c = _Compiled(
            sql=compiled.string,
            positional=bool(compiled.positional),
            binds=tuple(binds),
            literals=tuple((n, v) for n, v, _ in binds if v is not None),
            processors=tuple((n, p) for n, _, p in binds if p is not None),
        )
        self._compiled[dialect.name] = c
        return c

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run it; returns the DBAPI cursor (its rows are plain tuples)."""
        params = params or {}
        if conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute:
            result = conn.execute(self.statement, dict(params))
            return _Rows(result.all() if result.returns_rows else [])
        c = self._compile(conn.dialect)
        if c.literals or c.processors:
            values = dict(params)
            for name, literal in c.literals:
                values.setdefault(name, literal)
            for name, proc in c.processors:
                values[name] = proc(values[name])
        else:
            values = params  # type: ignore[assignment]
        names = (n for n, _, _ in c.binds)  # a missing parameter: KeyError, both styles
        args: Any = (
            tuple(values[n] for n in names) if c.positional else {n: values[n] for n in names}
        )
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cur.execute(c.sql, args)
        return cur

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row as a tuple, or None."""
        cur = self.execute(conn, params)
        row = cur.fetchone()
        cur.close()
        return None if row is None else tuple(row)

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def scalars(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The first column of every row."""
        cur = self.execute(conn, params)
        rows = cur.fetchall()
        cur.close()
        return [r[0] for r in rows]

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        self.execute(conn, params).close()

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set (``executemany``)."""
        if not rows:
            return
        if conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute:
            conn.execute(self.statement, [dict(r) for r in rows])
            return
        c = self._compile(conn.dialect)
        many: list[Any] = []
        for params in rows:
            values = dict(params)
            for name, literal in c.literals:
                values.setdefault(name, literal)
            for name, proc in c.processors:
                values[name] = proc(values[name])
            names = (n for n, _, _ in c.binds)
            many.append(
                tuple(values[n] for n in names) if c.positional else {n: values[n] for n in names}
            )
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cur.executemany(c.sql, many)
        cur.close()


class _Rows:
    """The rows of a statement run through SQLAlchemy, shaped like a DBAPI cursor."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = [tuple(r) for r in rows]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        self._rows = []
