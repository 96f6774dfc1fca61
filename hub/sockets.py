"""Live WebSocket connections of this process, one per platform, and what is pushed on them."""

from __future__ import annotations

import json
import logging
import select
import threading
from typing import Any

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # RFC 6455: policy violation (bad token)
CLOSE_REPLACED = 4000  # application code: a newer connection of the same platform took over
CLOSE_GOING_AWAY = 1001
SEND_NOW_WAIT = 0.05  # seconds a direct frame waits for a send in progress (a pusher's) to end


class SocketConnection:
    """One platform's socket; sends from several threads are serialized by a lock."""

    def __init__(self, ws: Any, platform_id: int, platform_name: str) -> None:
        self.ws = ws
        self.platform_id = platform_id
        self.platform_name = platform_name
        self.closed = threading.Event()
        self._send_lock = threading.Lock()

    def send(self, frame: dict[str, Any]) -> bool:
        """Send one JSON frame; False once the socket is gone."""
        if self.closed.is_set():
            return False
        try:
            with self._send_lock:
                self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
            return True
        except Exception:  # the peer went away: the receive loop will notice and clean up
            self.closed.set()
            return False

    def send_now(self, frame: dict[str, Any]) -> bool:
        """Send a frame unless that means waiting: False when another thread's send holds the
        socket longer than SEND_NOW_WAIT (a pusher blocked on a platform that stopped reading)
        or the socket's buffer is full. Direct messages are sent from request threads and the
        wake socket's reader, which a platform that stopped reading must not hold up."""
        if self.closed.is_set() or not self._send_lock.acquire(timeout=SEND_NOW_WAIT):
            return False
        try:
            poll = select.poll()  # not select(): its fds stop at 1024, sockets do not
            poll.register(self.ws.sock, select.POLLOUT)
            if not poll.poll(0):
                return False
            self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
            return True
        except Exception:
            self.closed.set()
            return False
        finally:
            self._send_lock.release()

    def send_text(self, text: str) -> bool:
        """Send an already encoded frame."""
        if self.closed.is_set():
            return False
        try:
            with self._send_lock:
                self.ws.send(text)
            return True
        except Exception:
            self.closed.set()
            return False

    def close(self, code: int, message: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            with self._send_lock:
                self.ws.close(reason=code, message=message)
        except Exception:
            log.debug("closing %s's socket failed", self.platform_name, exc_info=True)


class SocketRegistry:
    """Which platforms hold a live socket in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, SocketConnection] = {}

    def attach(self, connection: SocketConnection) -> None:
        """Register a connection; a platform's earlier connection is closed (takeover)."""
        with self._lock:
            previous = self._live.get(connection.platform_id)
            self._live[connection.platform_id] = connection
        if previous is not None:
            previous.close(CLOSE_REPLACED, "replaced by a newer connection of this platform")

    def detach(self, connection: SocketConnection) -> None:
        with self._lock:
            if self._live.get(connection.platform_id) is connection:
                del self._live[connection.platform_id]

    def is_live(self, platform_id: int) -> bool:
        connection = self._live.get(platform_id)
        return connection is not None and not connection.closed.is_set()

    def send_direct(self, platform_id: int, frame: dict[str, Any]) -> bool:
        """Send a direct frame without waiting (see ``SocketConnection.send_now``)."""
        connection = self._live.get(platform_id)
        return connection is not None and connection.send_now(frame)

    def close_all(self) -> None:
        with self._lock:
            connections = list(self._live.values())
            self._live.clear()
        for connection in connections:
            connection.close(CLOSE_GOING_AWAY, "the hub is shutting down")

    def __len__(self) -> int:
        return len(self._live)
