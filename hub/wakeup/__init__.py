"""The wake-up: how a commit reaches every consumer waiting on a stream, in any process.

In this process, a commit wakes delivery workers, socket pushers and long polls at once
(``local.StreamNotifier`` and the dispatcher). Other processes hear of it one way per database:
on PostgreSQL a NOTIFY sent by the committing transaction itself (``notify``), on SQLite a
datagram to every process on the machine (``datagram``). The same ways carry direct messages to
the process holding a socket. A slow safety poll (``watcher``, every ``HUB_WAKE_INTERVAL``
seconds) catches what a wake-up missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from hub.db import Changes, Database
from hub.wakeup.datagram import WakeSocket, wake_folder
from hub.wakeup.notify import PgWakeup
from hub.wakeup.watcher import StreamWatcher

log = logging.getLogger(__name__)

Wake = Callable[[set[int], set[int]], None]  # (news, lease moves)
Direct = Callable[[int, dict[str, Any]], bool]  # (platform id, frame) -> sent


class Wakeup:
    """This process's side of the wake-up: tell the others, hear them, poll now and then."""

    def __init__(
        self, db: Database, owner: str, interval: float, wake: Wake, direct: Direct
    ) -> None:
        """``wake(news, lease_moves)``: what this process does for changes committed anywhere,
        this process included; ``direct``: send a frame relayed by another process."""
        self.wake = wake
        self.watcher = StreamWatcher(db, interval, wake)
        self.datagram: WakeSocket | None = None
        self.pg: PgWakeup | None = None
        if db.sqlite_file is not None:
            self.datagram = WakeSocket(wake_folder(str(db.sqlite_file)), wake, owner, direct)
        elif not db.is_sqlite:
            self.pg = PgWakeup(db.engine, owner, wake, direct, on_all=self.watcher.check)
            db.before_commit = self._notify
        db.on_commit = self.committed

    def _notify(self, session: Session, changes: Changes) -> None:
        assert self.pg is not None
        self.pg.notify_changes(session, *changes)

    def committed(self, changes: Changes) -> None:
        """A transaction of this process committed: wake here, and tell the others (SQLite;
        on PostgreSQL the commit itself told them). A stream this process took over from one
        of its own sockets needs no word here: the new socket closed the old one itself."""
        news, moves = changes
        self.wake(news, set())
        if self.datagram is not None:
            self.datagram.send(news, moves)

    def send_direct(self, owner: str, frames: dict[int, dict[str, Any]]) -> bool:
        """Hand direct frames to the process a socket lease names; False where none can."""
        relay = self.datagram or self.pg
        return relay is not None and relay.send_direct(owner, frames)

    @property
    def relays(self) -> bool:
        """Whether direct frames can reach another process (not for an in-memory database)."""
        return self.datagram is not None or self.pg is not None

    def start(self) -> None:
        """Hear other processes, and poll now and then."""
        self.watcher.check()  # learn where the streams are, to see what moves from now on
        self.watcher.start()
        if self.datagram is not None:
            self.datagram.start()
        if self.pg is not None:
            self.pg.start()

    def stop(self) -> None:
        if self.datagram is not None:
            self.datagram.stop()
        if self.pg is not None:
            self.pg.stop()
        self.watcher.stop()
