"""Wake this process's consumers for events that other hub processes committed.

A commit in this process wakes its delivery workers, socket pushers and long polls at once
(``Database.on_wake``). Events committed by another process (a second gunicorn worker, the web
server beside ``flask hub deliver``, a CLI command) are found by one thread per process: every
``HUB_WAKE_INTERVAL`` seconds it reads each stream's last seq and its platform's last "up"
time, one small query for all platforms, and wakes the streams where either changed: new
events, or a ``/ping`` served by another process that ended a down platform's wait (its queue
is replayed at once). The "up" time is set anew by every ``mark_up``, so a platform marked down
and up again between two looks is not missed. The same query reads who owns each stream: a
WebSocket of a platform that connected to another process takes its stream, and the old socket
here is closed at once (``leases_moved``) rather than at this process's next lease renewal.
On SQLite the query is skipped while ``PRAGMA data_version`` says no other connection has
committed anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hub.db import Database
from hub.models import Platform
from hub.outbox.reader import plain_connection

log = logging.getLogger(__name__)

_STREAMS_SQL = f"SELECT id, last_seq, last_success_at, lease_owner FROM {Platform.__table__.name}"
RETRY_SECONDS = 1.0  # after a failed read


class StreamWatcher:
    """One thread: wake ``wake(platform_ids)`` for streams with news or a platform back up, and
    tell ``leases_moved({platform_id: owner})`` of streams whose owner changed."""

    def __init__(
        self,
        db: Database,
        interval: float,
        wake: Callable[[set[int]], None],
        leases_moved: Callable[[dict[int, str | None]], None] | None = None,
    ) -> None:
        self.engine = db.read_engine
        self.is_sqlite = db.is_sqlite
        self.interval = interval
        self.wake = wake
        self.leases_moved = leases_moved
        self._known: dict[int, tuple[int, object, str | None]] | None = None
        self._data_version: int | None = None
        self._connection: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()

    def check(self) -> set[int]:
        """Read the streams once; return (and wake) the platforms whose stream moved.

        The first check only learns where the streams are."""
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
            cursor.execute(_STREAMS_SQL)
            current = {pid: tuple(state) for pid, *state in cursor.fetchall()}
        finally:
            cursor.close()
        known, self._known = self._known, current
        if known is None:
            return set()
        moved: set[int] = set()
        owners: dict[int, str | None] = {}
        for pid, (seq, up_at, owner) in current.items():  # one pass: 1,000 platforms, 100 a s
            before = known.get(pid)
            if before is None or seq != before[0] or up_at != before[1]:
                moved.add(pid)
            if before is not None and owner != before[2]:
                owners[pid] = owner
        if moved:
            self.wake(moved)
        if owners and self.leases_moved is not None:
            self.leases_moved(owners)
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
