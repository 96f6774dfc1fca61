"""Direct messages to a WebSocket held by another hub process, through PostgreSQL's NOTIFY.

A direct message is never stored: it goes to the receivers' sockets or nowhere. A receiver's
socket may be open on another process of the hub, on this machine or another one; the stream
lease the socket holds names that process. On SQLite the frames go through the wake sockets
(hub/wake_socket.py); on PostgreSQL every hub process LISTENs on a channel of its own, and the
process that took the message sends the frames there with ``pg_notify``: the server passes
them on at once and keeps nothing once every listener has read them.

Channels are named from the database, the schema and the process's owner id, so that hubs
sharing a PostgreSQL server (or a test run's schemas) never hear each other. PostgreSQL takes
payloads under 8,000 bytes: a larger direct message reaches the sockets of the process that
took it only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from adapters.websocket.connections import deliver_relayed, encode_relayed
from hub.outbox.reader import plain_connection

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7999  # PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more
WAIT_SECONDS = 1.0  # the listener looks at its stop flag this often
RETRY_SECONDS = 1.0  # after a lost connection


def process_of(owner: str) -> str:
    """The process part of an owner id or of a socket's lease (``host:pid:tag/ws-...``)."""
    return owner.split("/", 1)[0]


class PgRelay:
    """This process's channel, and the sender to the other processes' channels."""

    def __init__(
        self, engine: Engine, owner: str, direct: Callable[[int, dict[str, Any]], bool]
    ) -> None:
        """``owner``: this process's owner id; ``direct(platform_id, frame)`` sends a frame
        another process relayed to a socket of this one."""
        self.engine = engine
        self.owner = process_of(owner)
        self.direct = direct
        self._namespace: str | None = None
        self._sender: Any = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()

    def channel(self, owner: str) -> str:
        """The channel of the process that ``owner`` (an owner id or a lease) names."""
        key = f"{self._namespace_of_database()}|{process_of(owner)}"
        return "hub_direct_" + hashlib.sha256(key.encode()).hexdigest()[:40]

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

    # -- receiving ---------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> bool:
        """Listen on this process's channel; True once listening (the thread keeps trying)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-relay", daemon=True)
            self._thread.start()
        return self._listening.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:
                self._listening.clear()
                log.exception("listening for direct messages relayed by other processes failed")
                self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        connection = plain_connection(self.engine).dbapi_connection
        try:
            connection.execute(f'LISTEN "{self.channel(self.owner)}"')
            self._listening.set()
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=WAIT_SECONDS):
                    if self._stop.is_set():
                        break
                    if notice.payload:  # stop() wakes the listener with an empty one
                        deliver_relayed(notice.payload, self.direct)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._listening.is_set():
            self.send_to(self.owner, "")  # ends the listener's wait at once
        if self._thread is not None:
            self._thread.join(WAIT_SECONDS + 1)
        with self._send_lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    # -- sending -----------------------------------------------------------------------------
    def send_direct(self, owner: str, frames: dict[int, dict[str, Any]]) -> bool:
        """Hand direct frames to the process named by ``owner`` (a socket lease); True when
        PostgreSQL took them. False for frames too large for one notification, or when the
        database cannot be reached."""
        payload = encode_relayed(frames)
        if len(payload.encode()) > MAX_PAYLOAD:
            log.debug("direct frames for %s too large to relay (%d bytes)", owner, len(payload))
            return False
        return self.send_to(owner, payload)

    def send_to(self, owner: str, payload: str) -> bool:
        try:
            channel = self.channel(owner)
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
            log.warning("could not relay direct frames to %s", owner, exc_info=True)
            with self._send_lock:
                sender, self._sender = self._sender, None
            if sender is not None:
                try:
                    sender.close()
                except Exception:
                    log.debug("closing the relay's connection failed", exc_info=True)
            return False
