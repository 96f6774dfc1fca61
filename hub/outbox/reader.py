"""Read a stream's next pending events with plain DB-API cursors on a few kept connections.

Socket pushers and REST delivery workers read once per wake, so at a few hundred events a
second the engine's per-query work (pool checkout, BEGIN, compiled-statement setup, result
wrapping; ~340 us of CPU through an ORM session) was most of what a round cost; a bare cursor
on a kept connection takes a few microseconds. The connections come from the read engine (its
connect-time settings, e.g. SQLite's PRAGMAs), detached from its pool, in autocommit mode: the
one SELECT is its own consistent snapshot. They stay open until the hub closes.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from hub.db import Database
from hub.models import EventStatus, OutboxEvent

# ix_outbox_stream covers the WHERE and the ORDER BY.
_PENDING_SQL = (
    "SELECT event_id, seq, kind, payload, id, queued_at, attempts"
    f" FROM {OutboxEvent.__table__.name}"
    " WHERE platform_id = ? AND status = '{pending}' AND seq > ? ORDER BY seq LIMIT ?"
)

Row = tuple[str, int, str, str, int, Any, int]


def plain_connection(engine: Engine) -> Any:
    """A DB-API connection of ``engine`` (its connect-time settings), detached from its pool,
    in autocommit mode: each statement is its own consistent snapshot. Closing it closes it."""
    connection = engine.raw_connection()
    connection.detach()
    if engine.dialect.name != "sqlite":  # the read engine sets SQLite's autocommit on connect
        connection.dbapi_connection.rollback()  # the pool's pre-ping may have begun one
        connection.dbapi_connection.autocommit = True
    return connection


def as_datetime(value: Any) -> datetime:
    """A timestamp as the driver gives it: a datetime (PostgreSQL) or ISO text (SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class StreamReader:
    """Pending events of a platform's stream, after a seq, through at most SIZE connections."""

    SIZE = 8  # connections at most; a reader waits for a free one (1,000 woken at once by $all)

    def __init__(self, db: Database) -> None:
        self.engine = db.read_engine
        sql = _PENDING_SQL.format(pending=EventStatus.PENDING.value)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sql = sql if self.is_sqlite else sql.replace("?", "%s")
        self._free = threading.Condition()
        self._idle: list[Any] = []
        self._open = 0
        self._closed = False

    def _take(self) -> Any:
        with self._free:
            while not self._idle and self._open >= self.SIZE:
                self._free.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return plain_connection(self.engine)
        except Exception:
            self._discard(None)
            raise

    def _give_back(self, connection: Any) -> None:
        with self._free:
            if not self._closed:
                self._idle.append(connection)
                self._free.notify()
                return
        self._discard(connection)

    def _discard(self, connection: Any) -> None:
        with self._free:
            self._open -= 1
            self._free.notify()
        if connection is not None:
            connection.close()

    def read(self, platform_id: int, after: int, limit: int) -> list[Row]:
        """Pending events of a stream with a seq above ``after``, in order, up to ``limit``:
        ``(event_id, seq, kind, payload, row id, queued_at, attempts)``; ``queued_at`` as the
        driver gives it (see ``as_datetime``)."""
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, (platform_id, after, limit))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except Exception:
            self._discard(connection)  # broken or not: never reused
            raise
        self._give_back(connection)
        return rows

    def close(self) -> None:
        with self._free:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)
