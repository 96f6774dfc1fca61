"""Run the hot path's statements on the transaction's own DB-API cursor.

``POST /message`` runs four statements (the room with its members, the message row, the
receivers' next seqs, their outbox rows). Through SQLAlchemy each costs tens of microseconds of
Python around the driver call (compiled-statement lookup, parameter and result processing),
together about a fifth of the request; on the cursor of the same connection, inside the same
transaction, it costs a few. Each statement is written once, in SQLite's ``?`` style, and turned
into psycopg's ``%s`` style for PostgreSQL. Values go in as the tables store them: see
``stored_time``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection


class PlainStatement:
    """One SQL statement for both databases."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        self.postgresql = sql.replace("?", "%s")  # no literal ? or % in these statements

    def text(self, connection: Connection) -> str:
        return self.sqlite if connection.dialect.name == "sqlite" else self.postgresql


def fetch(connection: Connection, statement: PlainStatement, params: Sequence[Any]) -> list[Any]:
    """Run a statement in the connection's transaction; return its rows (tuples)."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement.text(connection), params)
        return cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()


def execute_many(
    connection: Connection, statement: PlainStatement, rows: Iterable[Sequence[Any]]
) -> None:
    """Run a statement once per row of parameters, in the connection's transaction."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(statement.text(connection), list(rows))
    finally:
        cursor.close()


def stored_time(connection: Connection, value: datetime) -> datetime | str:
    """A naive UTC datetime as the table stores it: SQLite keeps SQLAlchemy's text form (which
    it parses back, and which sorts as the times do), PostgreSQL the value itself."""
    if connection.dialect.name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
