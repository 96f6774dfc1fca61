"""One platform's WebSocket session: push its stream in seq order, take acks and calls.

Frames out: ``{"seq", "event", "data"}`` for stored events (everything pending is sent again
after a reconnect), ``{"ref", "status", "message", ...}`` answering a call, and
``{"status": 400, "error": ...}`` for a frame the hub cannot read. Frames in: ``{"ack": n}``
(cumulative) and ``{"ref", "call", "data"}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from adapters import OutgoingEvent
from adapters.websocket import WebSocketAdapter
from hub import calls, outbox
from hub.errors import ApiError
from hub.models import Platform
from hub.sockets import CLOSE_REPLACED, SocketConnection

CLOSE_INTERNAL = 1011  # RFC 6455: the server met an unexpected condition
CLOSE_TRY_AGAIN = 1013  # RFC 6455: try again later
PUSH_ATTEMPTS = 5

log = logging.getLogger(__name__)


class SocketSession:
    """Serve one connected platform until its socket closes."""

    def __init__(self, hub: Any, connection: SocketConnection, platform: Platform) -> None:
        self.hub = hub
        self.connection = connection
        self.platform = platform
        self.platform_id = platform.id
        self.owner = f"{hub.dispatcher.owner}/ws-{uuid.uuid4().hex[:6]}"
        self.last_sent = 0
        self.lease_seconds = hub.config["HUB_LEASE_SECONDS"]

    def run(self, receive: Any) -> None:
        """Push in a thread of its own; read frames here, until either side closes."""
        try:
            with self.hub.db.write() as session:
                outbox.take_lease(session, self.platform_id, self.owner, self.lease_seconds)
                outbox.mark_up(session, self.platform_id)
        except Exception:  # after the 101 answer: close the socket, never answer HTTP on it
            log.exception("%s: could not start its WebSocket session", self.platform.name)
            self.connection.close(CLOSE_TRY_AGAIN, "the hub could not start the session")
            return
        self.hub.sockets.attach(self.connection)
        log.info("%s connected by WebSocket", self.platform.name)
        pusher = threading.Thread(target=self._push, name=f"ws-{self.platform.name}", daemon=True)
        pusher.start()
        try:
            self._receive_loop(receive)
        finally:
            self.connection.closed.set()
            self.hub.notifier.notify([self.platform_id])  # let the pusher see the close
            pusher.join(5)
            self.hub.sockets.detach(self.connection)
            with self.hub.db.write() as session:
                outbox.release_leases(session, self.owner)
                if not self.hub.sockets.is_live(self.platform_id):
                    outbox.mark_disconnected(session, self.platform_id, "WebSocket closed")
            log.info("%s disconnected", self.platform.name)

    def _push(self) -> None:
        """Push until the socket closes; a database error is retried, then closes the socket
        (1011) so the platform reconnects rather than waiting on a silent socket."""
        failures = 0
        while not self.connection.closed.is_set():
            try:
                self._push_until_closed()
                return
            except Exception:
                failures += 1
                log.exception("%s: pushing failed (%d)", self.platform.name, failures)
                if failures >= PUSH_ATTEMPTS:
                    self.connection.close(CLOSE_INTERNAL, "the hub could not read the stream")
                    return
                self.connection.closed.wait(min(2.0**failures * 0.1, 5.0))

    def _push_until_closed(self) -> None:
        notifier, db = self.hub.notifier, self.hub.db
        batch = self.hub.config["HUB_DELIVERY_BATCH"]
        renew_every = self.lease_seconds / 3
        renewed = time.monotonic()
        while not self.connection.closed.is_set():
            seen = notifier.version(self.platform_id)
            with db.read() as session:
                events = outbox.pending_after(session, self.platform_id, self.last_sent, batch)
            for event in events:
                outgoing = OutgoingEvent(event.event_id, event.seq, event.kind, event.payload)
                if not self.connection.send_text(WebSocketAdapter.frame(outgoing)):
                    return
                self.last_sent = event.seq
            if time.monotonic() - renewed > renew_every:
                with db.write() as session:
                    owned = outbox.acquire_lease(
                        session, self.platform_id, self.owner, self.lease_seconds
                    )
                if not owned:
                    self.connection.close(CLOSE_REPLACED, "replaced by a newer connection")
                    return
                renewed = time.monotonic()
            if not events:
                notifier.wait(self.platform_id, seen, renew_every)

    def _receive_loop(self, receive: Any) -> None:
        while not self.connection.closed.is_set():
            try:
                # A long wait: a close from either side ends it at once anyway.
                text = receive(timeout=30.0)
            except Exception:  # ConnectionClosed, or the transport failed
                return
            if text is not None:
                reply = self.handle(text)
                if reply is not None:
                    self.connection.send(reply)

    def handle(self, text: str | bytes) -> dict[str, Any] | None:
        """Act on one frame; return the frame to answer, if any."""
        try:
            frame = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return {"status": 400, "error": "not a JSON frame"}
        if not isinstance(frame, dict):
            return {"status": 400, "error": "a frame is a JSON object"}
        if "ack" in frame:
            return self._ack(frame["ack"])
        if "call" in frame:
            return self._call(frame)
        return {"status": 400, "error": 'expected {"ack": n} or {"ref", "call", "data"}'}

    def _ack(self, seq: Any) -> dict[str, Any] | None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            return {"status": 400, "error": "ack must be a non-negative integer seq"}
        with self.hub.db.write() as session:
            outbox.ack_through(session, self.platform_id, min(seq, self.last_sent))
        return None

    def _call(self, frame: dict[str, Any]) -> dict[str, Any]:
        ref = frame.get("ref")
        try:
            data = calls.load(str(frame.get("call")), frame.get("data"))
            answer, _ = calls.perform(
                self.hub,
                self.platform,
                frame["call"],
                data,
                idempotency_key=frame.get("idempotencyKey"),
            )
        except ApiError as error:
            answer = error.body()
        except Exception:
            log.exception("%s: WebSocket call failed", self.platform.name)
            answer = {"status": 500, "message": "internal error; see the hub's log"}
        return {"ref": ref, **answer}
