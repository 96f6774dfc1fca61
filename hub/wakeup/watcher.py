"""The safety poll: now and then, look for stream changes the wake-up may have missed.

Processes tell each other of their commits (NOTIFY on PostgreSQL, a datagram on SQLite); a
datagram can be dropped and a listener can lose its connection, so one thread per process
also reads, every ``HUB_WAKE_INTERVAL`` seconds, each stream's last seq, its platform's last
"up" time and its owner, one small query for all platforms, and wakes the streams where the
seq or the "up" time changed (new events, or a ``/ping`` served by another process) and tells
of the streams whose owner changed (a WebSocket of the platform connected to another process).
On SQLite the query is skipped while ``PRAGMA data_version`` says no other connection has
committed anything. ``check()`` also runs at once when a change too large to list arrives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from hub.db import Database
from hub.db.lean import LeanStatement, plain_connection
from hub.models import Platform

log = logging.getLogger(__name__)

_PLATFORMS = Platform.__table__
_STREAMS = LeanStatement(
    select(
        _PLATFORMS.c.id,
        _PLATFORMS.c.last_seq,
        _PLATFORMS.c.last_success_at,
        _PLATFORMS.c.lease_owner,
    )
)
RETRY_SECONDS = 1.0  # after a failed read


class StreamWatcher:
    """One thread: wake ``wake(news, lease_moves)`` for streams with news or a platform back
    up, and for streams whose owner changed."""

    def __init__(
        self,
        db: Database,
        interval: float,
        wake: Callable[[set[int], set[int]], None],
    ) -> None:
        self.engine = db.read_engine
        self.is_sqlite = db.is_sqlite
        self.interval = interval
        self.wake = wake
        self._known: dict[int, tuple[int, object, str | None]] | None = None
        self._data_version: int | None = None
        self._connection: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()

    def check(self) -> set[int]:
        """Read the streams once; return (and wake) the platforms whose stream moved.

        The first check only learns where the streams are. Thread-safe: the listener of the
        wake-up calls it too."""
        with self._lock:
            return self._check()

    def _check(self) -> set[int]:
        if self._connection is None:
            self._connection = plain_connection(self.engine)
        cursor = self._connection.cursor()
        try:
            if self.is_sqlite:
                cursor.execute("PRAGMA data_version")
                version = cursor.fetchone()[0]
                if version == self._data_version:
                    return set()
                self._data_version = version
            cursor.execute(_STREAMS.compiled(self.engine.dialect)[0])
            current = {pid: tuple(state) for pid, *state in cursor.fetchall()}
        finally:
            cursor.close()
        known, self._known = self._known, current
        if known is None:
            return set()
        moved: set[int] = set()
        owners: set[int] = set()
        for pid, (seq, up_at, owner) in current.items():  # one pass over all platforms
            before = known.get(pid)
            if before is None or seq != before[0] or up_at != before[1]:
                moved.add(pid)
            if before is not None and owner != before[2]:
                owners.add(pid)
        if moved or owners:
            self.wake(moved, owners)
        return moved

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("looking for other processes' events failed; retrying")
                self._reset()
                self._stop.wait(RETRY_SECONDS)

    def _reset(self) -> None:
        with self._lock:
            connection, self._connection, self._data_version = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                log.debug("closing the watcher's connection failed", exc_info=True)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._reset()
