"""The services of one hub app and the threads a process runs, started only when asked.

``create_app`` builds a ``Hub`` and starts nothing. What runs in a process is decided by the
command that runs it: a server (``wsgi.py``: gunicorn or ``flask --app wsgi run``) calls
``serve()``, which loads ``HUB_PLATFORMS_FILE`` and starts the wake-up, the scheduler
(``HUB_SCHEDULER``) and delivery (``HUB_DELIVERY``); ``flask --app hub hub deliver`` calls
``deliver()``; other commands start nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import uuid
from typing import Any

from adapters.websocket.connections import SocketRegistry
from adapters.websocket.keeper import StreamKeeper
from hub.db import Database
from hub.delivery.dispatcher import Dispatcher
from hub.monitoring.metrics import HubMetrics
from hub.outbox.reader import StreamReader
from hub.registry.platforms import load_file
from hub.usersync.scheduler import SyncScheduler
from hub.wakeup import Wakeup
from hub.wakeup.local import StreamNotifier

log = logging.getLogger("hub")


def process_owner() -> str:
    """This process's owner id, ``host:pid:tag``: stream leases and wake-up inboxes name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Hub:
    """The services of one app, kept in ``app.extensions["hub"]``."""

    def __init__(self, config: dict[str, Any], db: Database) -> None:
        self.config = config
        self.db = db
        self.owner = process_owner()
        self.metrics = HubMetrics(db)
        self.reader = StreamReader(db)  # the one reader of the streams, for every consumer
        self.notifier = StreamNotifier()
        self.sockets = SocketRegistry()
        self.dispatcher = Dispatcher(db, config, self.metrics, self.reader, self.owner)
        self.scheduler = SyncScheduler(db, config)
        self.stream_keeper = StreamKeeper(
            db,
            config["HUB_LEASE_SECONDS"],
            f"{self.owner}/ws-",
            send_timeout=config["HUB_WS_SEND_TIMEOUT"],
        )
        self.wakeup = Wakeup(
            db, self.owner, config["HUB_WAKE_INTERVAL"], self.wake, self.sockets.send_direct
        )
        self.serving = False
        self._closed = False

    def wake(self, news: set[int], lease_moves: set[int] = frozenset()) -> None:
        """Streams changed (here or in another process): wake their consumers here."""
        if news:
            self.dispatcher.wake(news)
            self.notifier.notify(news)
        if lease_moves:
            self.stream_keeper.leases_moved(lease_moves)

    def serve(self) -> None:
        """Start what a server process runs: the registry file, the wake-up (socket pushers
        and long polls wait on it), the scheduler and delivery as configured."""
        self.serving = True
        config = self.config
        if config["HUB_LOAD_PLATFORMS"]:
            names = load_file(self.db, config["HUB_PLATFORMS_FILE"])
            log.info("loaded %d platforms from %s", len(names), config["HUB_PLATFORMS_FILE"])
        if config["HUB_SCHEDULER"]:  # first: a bad HUB_SYNC_CRON stops here
            self.scheduler.start()
        self.wakeup.start()
        if config["HUB_DELIVERY"]:
            self.dispatcher.start()
        atexit.register(self.close)

    def deliver(self) -> None:
        """Start delivery alone, woken by the other processes' commits."""
        self.wakeup.start()
        self.dispatcher.start()

    def close(self) -> None:
        """Stop every thread, write what is pending, hand the streams back, close the database.
        Once: a server's exit runs it again."""
        if self._closed:
            return
        self._closed = True
        self.wakeup.stop()
        self.scheduler.stop()
        self.sockets.close_all()
        self.stream_keeper.stop()
        self.dispatcher.stop()
        self.reader.close()
        self.db.dispose()
