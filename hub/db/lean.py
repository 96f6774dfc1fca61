"""Lean statements: a Core statement compiled once per dialect, run on a bare DB-API cursor.

``POST /message`` runs four statements (the room with its members, the message row, the
receivers' next seqs, their outbox rows), and every delivery round reads a stream. Through
``Connection.execute`` each costs tens of microseconds of Python around the driver call
(compiled-cache lookup, parameter and result processing); on the cursor of the same connection,
inside the same transaction, a few. So these statements are written once with SQLAlchemy Core,
compiled once per dialect here, and their text runs on the cursor. Values go in as the tables
store them, without SQLAlchemy's bind processing: enums by value, times as ``stored_time``
gives them. ``tests/db/test_lean.py`` checks each against ``Connection.execute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.sql import Executable


class LeanStatement:
    """One Core statement, its SQL text and parameter order kept per dialect."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """The SQL text, the parameter names in order (positional drivers; None for named
        ones) and the values of the statement's own literals, for this dialect."""
        entry = self._compiled.get(dialect.name)
        if entry is None:
            compiled = self.statement.compile(dialect=dialect)
            defaults = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            if defaults:  # they would need SQLAlchemy's execution context
                raise ValueError(f"a lean statement must set {', '.join(defaults)} itself")
            names = tuple(compiled.positiontup or ()) if dialect.positional else None
            literals = {name: value for name, value in compiled.params.items() if value is not None}
            entry = self._compiled[dialect.name] = (str(compiled), names, literals)
        return entry

    def parameters(self, dialect: Dialect, values: Mapping[str, Any]) -> Sequence[Any] | Mapping:
        """The values in the form the driver takes for this statement's text."""
        _, names, literals = self.compiled(dialect)
        merged = {**literals, **values} if literals else values
        return merged if names is None else tuple(merged[name] for name in names)


def _cursor(connection: Connection) -> Any:
    return connection.connection.dbapi_connection.cursor()


def fetch(
    connection: Connection, statement: LeanStatement, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run a statement in the connection's transaction; return its rows as tuples."""
    dialect = connection.dialect
    cursor = _cursor(connection)
    try:
        cursor.execute(statement.compiled(dialect)[0], statement.parameters(dialect, values))
        return cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()


def execute_many(
    connection: Connection, statement: LeanStatement, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Run a statement once per row of values, in the connection's transaction."""
    dialect = connection.dialect
    cursor = _cursor(connection)
    try:
        cursor.executemany(
            statement.compiled(dialect)[0], [statement.parameters(dialect, r) for r in rows]
        )
    finally:
        cursor.close()


def stored_time(dialect: Dialect, value: datetime) -> datetime | str:
    """A naive UTC datetime as the table stores it: SQLite keeps SQLAlchemy's text form (which
    it parses back, and which sorts as the times do), PostgreSQL the value itself."""
    if dialect.name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def as_datetime(value: Any) -> datetime:
    """A timestamp as the driver gives it: a datetime (PostgreSQL) or ISO text (SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def plain_connection(engine: Engine) -> Any:
    """A DB-API connection of ``engine`` (its connect-time settings), detached from its pool,
    in autocommit mode: each statement is its own consistent snapshot. Closing it closes it."""
    connection = engine.raw_connection()
    connection.detach()
    if engine.dialect.name != "sqlite":  # the read engine sets SQLite's autocommit on connect
        connection.dbapi_connection.rollback()  # the pool's pre-ping may have begun one
        connection.dbapi_connection.autocommit = True
    return connection
