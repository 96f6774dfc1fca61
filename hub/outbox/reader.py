"""The one reader of the streams: a platform's next pending events, after a seq, in order.

Delivery workers, WebSocket pushers and long polls all read here, once per wake. At a few
hundred events a second the engine's per-query work (pool checkout, BEGIN, result wrapping;
~340 us of CPU through an ORM session) would be most of what a round costs, so the statement
(written with Core, see ``hub/db/lean.py``) runs on bare cursors of a few kept connections of
the read engine, in autocommit mode: the one SELECT is its own consistent snapshot. They stay
open until the hub closes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from hub.db import Database
from hub.db.lean import LeanStatement, as_datetime, plain_connection
from hub.models import EventStatus, OutboxEvent

_EVENTS = OutboxEvent.__table__
# ix_outbox_stream covers the WHERE and the ORDER BY.
_PENDING_AFTER = LeanStatement(
    select(
        _EVENTS.c.id,
        _EVENTS.c.event_id,
        _EVENTS.c.seq,
        _EVENTS.c.kind,
        _EVENTS.c.payload,
        _EVENTS.c.queued_at,
        _EVENTS.c.attempts,
    )
    .where(
        _EVENTS.c.platform_id == bindparam("platform_id"),
        _EVENTS.c.status == bindparam("status"),
        _EVENTS.c.seq > bindparam("after"),
    )
    .order_by(_EVENTS.c.seq)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One pending event as its consumers need it, detached from any session."""

    id: int
    event_id: str
    seq: int
    kind: str
    payload: str  # JSON, rendered when enqueued
    queued_at: datetime
    attempts: int


class StreamReader:
    """Pending events of a platform's stream, after a seq, through at most SIZE connections."""

    SIZE = 8  # connections at most; a reader waits for a free one (1,000 woken at once by $all)

    def __init__(self, db: Database) -> None:
        self.engine = db.read_engine
        dialect = self.engine.dialect
        self._sql = _PENDING_AFTER.compiled(dialect)[0]
        self._dialect = dialect
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

    def read(self, platform_id: int, after: int, limit: int) -> list[QueuedEvent]:
        """Pending events of a stream with a seq above ``after``, in order, up to ``limit``."""
        values = {
            "platform_id": platform_id,
            "status": EventStatus.PENDING.value,
            "after": after,
            "limit": limit,
        }
        params = _PENDING_AFTER.parameters(self._dialect, values)
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, params)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except Exception:
            self._discard(connection)  # broken or not: never reused
            raise
        self._give_back(connection)
        return [
            QueuedEvent(row_id, event_id, seq, kind, payload, as_datetime(at), attempts)
            for row_id, event_id, seq, kind, payload, at, attempts in rows
        ]

    def close(self) -> None:
        with self._free:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)
