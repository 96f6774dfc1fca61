"""PostgreSQL's wake-up: NOTIFY sent by the committing transaction, LISTEN in every process.

A write transaction that changed streams sends ``pg_notify`` on the hub's channel before it
commits (``notify_changes``): PostgreSQL delivers it to every listening process at the commit,
and never for a transaction rolled back. Each hub process listens on one connection, on the
hub's channel and on a channel of its own that carries direct messages (never stored) to the
sockets it holds: the stream lease a socket holds names its process.

Channels are named from the database, the schema and (direct ones) the process's owner id, so
that hubs sharing a PostgreSQL server (or a test run's schemas) never hear each other.
PostgreSQL takes payloads under 8,000 bytes: a larger direct message reaches the sockets of the
process that took it only, and a change listing more streams than fit says "all streams".
An idle process holds its connection in ``LISTEN`` and makes no query.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from hub.db.lean import plain_connection
from hub.wakeup.messages import ALL, decode_changes, deliver_direct, encode_changes, encode_direct

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7999  # PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more
WAIT_SECONDS = 1.0  # the listener looks at its stop flag this often
STOP_SECONDS = 5.0  # how long stop() waits for the listener to end
RETRY_SECONDS = 1.0  # after a lost connection
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def process_of(owner: str) -> str:
    """The process part of an owner id or of a socket's lease (``host:pid:tag/ws-...``)."""
    return owner.split("/", 1)[0]


class PgWakeup:
    """This process's listener, and the sender to the hub's and other processes' channels."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        wake: Callable[[set[int], set[int]], None],
        direct: Callable[[int, dict[str, Any]], bool],
        on_all: Callable[[], None] | None = None,
    ) -> None:
        """``owner``: this process's owner id; ``wake(news, lease_moves)`` hears the changes
        other processes committed, ``on_all()`` a change too large to list; ``direct(platform
        id, frame)`` sends a frame another process relayed to a socket of this one."""
        self.engine = engine
        self.owner = process_of(owner)
        self.wake = wake
        self.direct = direct
        self.on_all = on_all
        self._namespace: str | None = None
        self._sender: Any = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._listened = False  # listened before: a new LISTEN may have missed changes

    # -- channels ----------------------------------------------------------------------------
    def _channel(self, name: str) -> str:
        key = f"{self._namespace_of_database()}|{name}"
        return "hub_" + hashlib.sha256(key.encode()).hexdigest()[:40]

    def changes_channel(self) -> str:
        """The hub's channel: which streams changed."""
        return self._channel("changes")

    def channel(self, owner: str) -> str:
        """The direct channel of the process that ``owner`` (an owner id or a lease) names."""
        return self._channel(f"direct|{process_of(owner)}")

    def _namespace_of_database(self) -> str:
        if self._namespace is None:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT current_database() || '.' || current_schema()")
                self._namespace = str(cursor.fetchone()[0])
                cursor.close()
            finally:
                connection.close()
        return self._namespace

    # -- sending -----------------------------------------------------------------------------
    def notify_changes(self, session: Session, news: set[int], moves: set[int]) -> None:
        """Tell every process of these changes when ``session``'s transaction commits."""
        # Named after its sender, which has woken its own consumers already.
        payload = f"{self.owner}|{encode_changes(news, moves)}"
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = f"{self.owner}|{ALL}"
        session.execute(_NOTIFY, {"channel": self.changes_channel(), "payload": payload})

    def send_direct(self, owner: str, frames: dict[int, dict[str, Any]]) -> bool:
        """Hand direct frames to the process named by ``owner`` (a socket lease); True when
        PostgreSQL took them. False for frames too large for one notification, or when the
        database cannot be reached."""
        payload = encode_direct(frames)
        if len(payload.encode()) > MAX_PAYLOAD:
            log.debug("direct frames for %s too large to relay (%d bytes)", owner, len(payload))
            return False
        return self._send(self.channel(owner), payload)

    def _send(self, channel: str, payload: str) -> bool:
        try:
            with self._send_lock:
                if self._sender is None:
                    self._sender = plain_connection(self.engine)
                cursor = self._sender.cursor()
                try:
                    cursor.execute("SELECT pg_notify(%s, %s)", (channel, payload))
                finally:
                    cursor.close()
            return True
        except Exception:
            log.warning("could not notify channel %s", channel, exc_info=True)
            with self._send_lock:
                sender, self._sender = self._sender, None
            if sender is not None:
                try:
                    sender.close()
                except Exception:
                    log.debug("closing the notifier's connection failed", exc_info=True)
            return False

    # -- receiving ---------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> bool:
        """Listen on both channels; True once listening (the thread keeps trying)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-wakeup", daemon=True)
            self._thread.start()
        return self._listening.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:
                self._listening.clear()
                log.exception("listening for other hub processes failed; retrying")
                self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        changes, direct = self.changes_channel(), self.channel(self.owner)
        connection = plain_connection(self.engine).dbapi_connection
        try:
            connection.execute(f'LISTEN "{changes}"')
            connection.execute(f'LISTEN "{direct}"')
            if self._listened and self.on_all is not None:
                self.on_all()  # listening again after a lost connection: look at everything
            self._listened = True
            self._listening.set()
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=WAIT_SECONDS):
                    if self._stop.is_set():
                        break
                    self._heard(notice.channel == direct, notice.payload)
        finally:
            connection.close()

    def _heard(self, is_direct: bool, payload: str) -> None:
        if not payload:  # stop() wakes the listener with an empty one
            return
        if is_direct:
            deliver_direct(payload, self.direct)
            return
        sender, _, changes = payload.rpartition("|")
        if sender == self.owner:
            return
        try:
            if changes == ALL:
                if self.on_all is not None:
                    self.on_all()
                return
            news, moves = decode_changes(changes)
            self.wake(news, moves)
        except Exception:
            log.exception("waking for another process's changes failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._listening.is_set():
            self._send(self.channel(self.owner), "")  # ends the listener's wait at once
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
        with self._send_lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()
