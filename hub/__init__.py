"""The chat-integrator hub: ``create_app()`` builds the Flask application and its services."""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import click
from flask import Flask

from adapters.websocket.connections import SocketRegistry
from adapters.websocket.keeper import StreamKeeper
from hub.config import PROJECT_ROOT, load_config
from hub.db import Database, default_sqlite_url
from hub.delivery.dispatcher import Dispatcher
from hub.monitoring.metrics import HubMetrics
from hub.usersync.scheduler import SyncScheduler
from hub.wakeup.datagram import WakeSocket, wake_folder
from hub.wakeup.local import StreamNotifier
from hub.wakeup.notify import PgRelay
from hub.wakeup.watcher import StreamWatcher

log = logging.getLogger("hub")


@dataclass
class Hub:
    """The services of one app, kept in ``app.extensions["hub"]``."""

    config: dict[str, Any]
    db: Database
    metrics: HubMetrics
    dispatcher: Dispatcher
    scheduler: SyncScheduler
    notifier: StreamNotifier = field(default_factory=StreamNotifier)
    sockets: SocketRegistry = field(default_factory=SocketRegistry)
    stream_keeper: StreamKeeper = field(init=False)
    watcher: StreamWatcher = field(init=False)
    # SQLite: other processes on this machine are told of each commit at once (None: PostgreSQL).
    wake_socket: WakeSocket | None = field(init=False)
    # How direct frames reach a socket held by another process: the wake sockets on SQLite,
    # NOTIFY on PostgreSQL (None: an in-memory database, one process).
    direct_relay: WakeSocket | PgRelay | None = field(init=False)

    def __post_init__(self) -> None:
        self.stream_keeper = StreamKeeper(
            self.db,
            self.config["HUB_LEASE_SECONDS"],
            f"{self.dispatcher.owner}/ws-",
            send_timeout=self.config["HUB_WS_SEND_TIMEOUT"],
        )
        self.watcher = StreamWatcher(
            self.db,
            self.config["HUB_WAKE_INTERVAL"],
            self.wake,
            leases_moved=self.stream_keeper.leases_moved,
        )
        self.wake_socket = (
            WakeSocket(
                wake_folder(str(self.db.sqlite_file)),
                self.wake,
                owner=self.dispatcher.owner,
                direct=self.sockets.send_direct,
            )
            if self.db.sqlite_file is not None
            else None
        )
        self.direct_relay = self.wake_socket
        if not self.db.is_sqlite:
            self.direct_relay = PgRelay(
                self.db.engine, self.dispatcher.owner, direct=self.sockets.send_direct
            )

    def listen_to_other_processes(self) -> None:
        """Be woken for events that other hub processes commit (socket pushers, long polls and
        delivery workers of this process wait for them)."""
        self.watcher.start()
        if self.wake_socket is not None:
            self.wake_socket.start()
        if isinstance(self.direct_relay, PgRelay):
            self.direct_relay.start()

    def start_delivery(self) -> None:
        """Run this process's delivery workers, woken also for other processes' events."""
        self.dispatcher.start()
        self.listen_to_other_processes()

    def wake(self, platform_ids: set[int]) -> None:
        """Tell delivery workers, socket pushers and long polls that these streams have news."""
        self.dispatcher.wake(platform_ids)
        self.notifier.notify(platform_ids)

    def committed(self, platform_ids: set[int]) -> None:
        """Events were committed here: wake this process, and tell the others."""
        self.wake(platform_ids)
        if self.wake_socket is not None:
            self.wake_socket.send(platform_ids)

    def close(self) -> None:
        if self.wake_socket is not None:
            self.wake_socket.stop()
        if isinstance(self.direct_relay, PgRelay):
            self.direct_relay.stop()
        self.watcher.stop()
        self.scheduler.stop()
        self.sockets.close_all()
        self.stream_keeper.stop()
        self.dispatcher.stop()
        self.db.dispose()


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("hub").setLevel(level.upper())


def _serves_requests() -> bool:
    """True under a WSGI server or ``flask run``; False for other ``flask`` commands."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        return ctx.info_name == "run"
    # The flask command sets this for every command; without a context it is `flask --help`.
    return os.environ.get("FLASK_RUN_FROM_CLI") != "true"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the hub: configuration, database (migrated), API, registry, delivery, scheduler."""
    from hub import cli
    from hub.api import register_api
    from hub.db import migrate
    from hub.registry import platforms as registry

    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    config = load_config(test_config)
    _configure_logging(config["HUB_LOG_LEVEL"])
    url = config["HUB_DATABASE_URL"] or default_sqlite_url(app.instance_path)
    config["HUB_DATABASE_URL"] = url
    app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = config["HUB_MAX_BODY_BYTES"]

    db = Database(url)
    if config["HUB_AUTO_MIGRATE"]:
        migrate.upgrade(db)
    metrics = HubMetrics(db)
    dispatcher = Dispatcher(db, config, metrics)
    hub = Hub(config, db, metrics, dispatcher, SyncScheduler(db, config))
    db.on_wake = hub.committed
    app.extensions["hub"] = hub

    register_api(app)
    cli.register(app)

    serving = _serves_requests()
    if serving and config["HUB_LOAD_PLATFORMS"] and config["HUB_AUTO_MIGRATE"]:
        names = registry.load_file(db, config["HUB_PLATFORMS_FILE"])
        log.info("loaded %d platforms from %s", len(names), config["HUB_PLATFORMS_FILE"])
    if serving and config["HUB_SCHEDULER"]:  # first: a bad HUB_SYNC_CRON stops here
        hub.scheduler.start()
        atexit.register(hub.scheduler.stop)
    if serving:  # socket pushers and long polls need it too, with or without delivery
        hub.listen_to_other_processes()
        atexit.register(hub.watcher.stop)
        if hub.wake_socket is not None:
            atexit.register(hub.wake_socket.stop)
    if serving and config["HUB_DELIVERY"]:
        dispatcher.start()
        atexit.register(dispatcher.stop)
    return app


def get_hub(app: Flask) -> Hub:
    return app.extensions["hub"]
