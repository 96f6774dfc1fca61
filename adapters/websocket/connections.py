"""Live WebSocket connections of this process, one per platform, and what is pushed on them."""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.websocket.frames import encode

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # RFC 6455: policy violation (bad token)
CLOSE_REPLACED = 4000  # application code: a newer connection of the same platform took over
CLOSE_GOING_AWAY = 1001
SEND_NOW_WAIT = 0.05  # seconds a direct frame waits for a send in progress (a pusher's) to end
CLOSE_WAIT = 1.0  # seconds a close waits for a send in progress before it cuts the connection
# The kernel grows a socket's send buffer up to 4 MB: kernel memory a platform that stops
# reading would hold until HUB_WS_SEND_TIMEOUT cuts it. A fixed buffer bounds that (Linux
# doubles the value); a frame larger than it is still sent, as the platform reads.
SEND_BUFFER_BYTES = 256 * 1024
_ORDER = itertools.count(1)  # connections of this process, in the order they came in


def next_connection_order() -> int:
    """A number for a connection coming in, before its handshake is answered: a client that
    opens a second socket once the first one's handshake is done gets it numbered after."""
    return next(_ORDER)


class SocketConnection:
    """One platform's socket; sends from several threads are serialized by a lock."""

    def __init__(
        self, ws: Any, platform_id: int, platform_name: str, order: int | None = None
    ) -> None:
        """``order``: from ``next_connection_order`` when the request came in (a later
        connection of the platform takes over from an earlier one); else numbered now."""
        self.ws = ws
        self.platform_id = platform_id
        self.platform_name = platform_name
        self.order = order if order is not None else next_connection_order()
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        self._sending_since: float | None = None  # monotonic time the send in progress began
        try:
            ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except (AttributeError, OSError):
            log.debug("%s: send buffer left to the kernel", platform_name, exc_info=True)

    def send(self, frame: dict[str, Any]) -> bool:
        """Send one JSON frame; False once the socket is gone."""
        if self.closed.is_set():
            return False
        return self.send_text(encode(frame))

    def send_now(self, frame: dict[str, Any]) -> bool:
        """Send a frame unless that means waiting: False when another thread's send holds the
        socket longer than SEND_NOW_WAIT (a pusher blocked on a platform that stopped reading)
        or the socket's buffer is full. Direct messages are sent from request threads and the
        wake socket's reader, which a platform that stopped reading must not hold up."""
        if self.closed.is_set() or not self._send_lock.acquire(timeout=SEND_NOW_WAIT):
            return False
        try:
            if not self._writable():
                return False
            self._send(encode(frame))
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
                self._send(text)
            return True
        except Exception:  # the peer went away: the receive loop will notice and clean up
            self.closed.set()
            return False

    def _send(self, text: str) -> None:
        """Send under the send lock, noting when: a send that never ends is a platform that
        stopped reading (``stalled_for``)."""
        self._sending_since = time.monotonic()
        try:
            self.ws.send(text)
        finally:
            self._sending_since = None

    def stalled_for(self) -> float:
        """How long the send in progress has waited for the platform to read; 0 if none."""
        since = self._sending_since
        return 0.0 if since is None else time.monotonic() - since

    def abort(self) -> None:
        """Cut the connection without a close frame (one could not be sent): the blocked send
        fails, the reader sees the end, and the session ends as for any closed socket."""
        self.closed.set()
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            log.debug("cutting %s's socket failed", self.platform_name, exc_info=True)

    def end_if_gone(self) -> None:
        """Wake the session's receive if simple-websocket has closed the socket: it sets its
        event before it marks the socket closed, so a receive that woke in between waits again
        for its whole timeout (30 s) on a dead socket (seen after a 1009 close)."""
        if getattr(self.ws, "connected", True):
            return
        self.closed.set()
        event = getattr(self.ws, "event", None)  # simple-websocket's receive waits on it
        if event is not None:
            event.set()

    def close(self, code: int, message: str) -> None:
        """Close with a close frame; cut the connection instead when a frame could not be sent
        now (a send in progress for CLOSE_WAIT, or a full buffer: the platform is not reading)."""
        if self.closed.is_set():
            return
        self.closed.set()
        if not self._send_lock.acquire(timeout=CLOSE_WAIT):
            self.abort()
            return
        try:
            if not self._writable():
                self.abort()
                return
            self.ws.close(reason=code, message=message)
        except Exception:
            log.debug("closing %s's socket failed", self.platform_name, exc_info=True)
        finally:
            self._send_lock.release()

    def _writable(self) -> bool:
        poll = select.poll()  # not select(): its fds stop at 1024, sockets do not
        poll.register(self.ws.sock, select.POLLOUT)
        return bool(poll.poll(0))


class SocketRegistry:
    """Which platforms hold a live socket in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, SocketConnection] = {}
        self._starts: dict[int, threading.Lock] = {}  # per platform: one session starts at once

    @contextmanager
    def starting(self, connection: SocketConnection) -> Iterator[bool]:
        """Start a platform's sessions one at a time, and say whether this connection is still
        the newest: a session can start after a later connection's (its thread was slower),
        and must then give way rather than take the stream from the newer one."""
        with self._lock:
            lock = self._starts.setdefault(connection.platform_id, threading.Lock())
        with lock:
            live = self._live.get(connection.platform_id)
            yield live is None or live.order < connection.order

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
