"""One platform's WebSocket session: push its stream in seq order, take acks and calls
(the frames: ``adapters/websocket/frames.py``)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from adapters.websocket.connections import CLOSE_REPLACED, SocketConnection
from adapters.websocket.frames import event_frame
from adapters.websocket.keeper import StreamKeeper
from hub.errors import ApiError
from hub.ingest import calls
from hub.models import Platform
from hub.outbox import leases, outcomes
from hub.wakeup.local import RECHECK_SECONDS

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
        self.owner = f"{hub.owner}/ws-{uuid.uuid4().hex[:6]}"
        self.last_sent = 0
        self.lease_seconds = hub.config["HUB_LEASE_SECONDS"]
        self.end_reason = "WebSocket closed"  # the platform's last_error once the session ends

    def run(self, receive: Any) -> None:
        """Push in a thread of its own; read frames here, until either side closes."""
        keeper = self.hub.stream_keeper
        with self.hub.sockets.starting(self.connection) as newest:
            if not newest:  # a later connection of the platform started first: it stays
                self.connection.close(CLOSE_REPLACED, "replaced by a newer connection")
                return
            acks = keeper.take_ack(self.platform_id)  # an earlier socket's, not yet written
            try:
                with self.hub.db.write() as session:
                    outcomes.ack_through_each(session, acks)
                    leases.take_over(session, self.platform_id, self.owner, self.lease_seconds)
                    leases.mark_up(session, self.platform_id)
            except Exception:  # after the 101 answer: close the socket, never answer HTTP on it
                keeper.restore(acks)
                log.exception("%s: could not start its WebSocket session", self.platform.name)
                self.connection.close(CLOSE_TRY_AGAIN, "the hub could not start the session")
                return
            self.hub.sockets.attach(self.connection)
            keeper.join(self)
        log.info("%s connected by WebSocket", self.platform.name)
        pusher = threading.Thread(target=self._push, name=f"ws-{self.platform.name}", daemon=True)
        pusher.start()
        try:
            self._receive_loop(receive)
        finally:
            self.connection.closed.set()
            keeper.leave(self)
            self.hub.notifier.notify([self.platform_id])  # let the pusher see the close
            pusher.join(5)
            self._close_stream(keeper)
            self.hub.sockets.detach(self.connection)
            log.info("%s disconnected", self.platform.name)

    def _close_stream(self, keeper: StreamKeeper) -> None:
        """Write the platform's last acks and give the stream up, in one transaction."""
        acks = keeper.take_ack(self.platform_id)
        try:
            with self.hub.db.write() as session:
                outcomes.ack_through_each(session, acks)
                leases.release_down(session, self.platform_id, self.owner, self.end_reason)
        except Exception:
            keeper.restore(acks)  # the keeper writes them later
            log.exception("%s: could not release its stream", self.platform.name)

    def lease_lost(self) -> None:
        """Another process's socket of this platform took the stream: give way to it."""
        self.connection.close(CLOSE_REPLACED, "replaced by a newer connection")

    def check_socket(self, limit: float) -> None:
        """Run by the keeper at each renewal. Cut the connection of a platform that has taken no
        bytes of a frame for ``limit`` seconds: its pusher is blocked, and so would be any close
        frame; the platform reconnects and gets everything after its last ack. And end a session
        whose socket simple-websocket has closed (e.g. 1009) without waking its receive."""
        waited = self.connection.stalled_for()
        if waited > limit:
            log.warning(
                "%s has not read a frame for %.0f s; cutting its WebSocket",
                self.platform.name,
                waited,
            )
            self.end_reason = f"stopped reading: a frame waited over {limit:g} s"
            self.connection.abort()
        self.connection.end_if_gone()

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
        """One read per wake: everything pending after the last frame sent, up to a batch.
        The notifier wakes it for commits of this process and, through the wake socket and the
        stream watcher, of other processes."""
        notifier, reader = self.hub.notifier, self.hub.reader
        batch = self.hub.config["HUB_DELIVERY_BATCH"]
        while not self.connection.closed.is_set():
            seen = notifier.version(self.platform_id)
            rows = reader.read(self.platform_id, self.last_sent, batch)
            for event in rows:
                seq = event.seq
                frame = event_frame(seq, event.kind, event.payload)
                # Before sending: the platform may ack it before send_text returns. If the send
                # fails the socket is gone, and a new session starts again from the last ack.
                self.last_sent = seq
                if not self.connection.send_text(frame):
                    return
            if len(rows) < batch:
                notifier.wait(self.platform_id, seen, RECHECK_SECONDS)

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
        # Written within ACK_FLUSH_SECONDS by the keeper, with the other platforms' acks.
        self.hub.stream_keeper.ack(self.platform_id, min(seq, self.last_sent))
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
