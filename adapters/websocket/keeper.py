"""What this process's WebSocket sessions share: batched acks and one lease renewal for all.

Acks. A session records the highest seq its platform acknowledged (``ack``); one thread writes
every platform's pending ack in one write transaction, ``ACK_FLUSH_SECONDS`` after the first one
arrived (at once when ``ACK_FLUSH_PLATFORMS`` platforms wait), and a session writes its own
platform's pending ack in its opening and closing transactions. A crash loses at most the acks of
the last interval: those events are sent again with the same ids, which at-least-once allows.

Leases. Each session owns its platform's stream under an owner id ``<process owner>/ws-xxxxxx``.
The same thread renews every one of them with one UPDATE every ``HUB_LEASE_SECONDS / 3``. A
session whose owner that UPDATE no longer finds was replaced (a socket of the same platform in
another process took the stream): it is told with ``lease_lost()``. The takeover's commit wakes
every process (``hub/wakeup``), which renews at once (``leases_moved``), so the replaced socket
is closed then, not up to ``HUB_LEASE_SECONDS / 3`` later.

Stalls. At each renewal a session whose platform has not taken a frame for
``HUB_WS_SEND_TIMEOUT`` seconds is cut (``check_socket``): its pusher was blocked, holding the
socket, and the platform gets everything after its last ack when it reconnects. The same check
ends a session whose socket simple-websocket closed without waking its receive.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from hub.db import Database
from hub.models import Platform
from hub.outbox import leases, outcomes

ACK_FLUSH_SECONDS = 0.025  # how long acks gather before one transaction writes them all
ACK_FLUSH_PLATFORMS = 256  # this many platforms with a pending ack write at once
RETRY_SECONDS = 0.5  # after a failed flush or renewal

log = logging.getLogger(__name__)

_platforms = Platform.__table__


class StreamMember(Protocol):
    """What the keeper needs of a socket session."""

    owner: str
    platform_id: int

    def lease_lost(self) -> None: ...

    def check_socket(self, limit: float) -> None: ...


class StreamKeeper:
    """One thread per process: flush the sessions' acks, renew their leases, see takeovers."""

    def __init__(
        self, db: Database, lease_seconds: float, owner_prefix: str, send_timeout: float = 30.0
    ) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.renew_every = lease_seconds / 3
        self.owner_prefix = owner_prefix
        self._lock = threading.Lock()
        self._acks: dict[int, int] = {}
        self._members: dict[str, StreamMember] = {}
        self._pending = threading.Event()  # an ack waits
        self._full = threading.Event()  # many wait, or stopping: flush now
        self._renew_now = threading.Event()  # another process took a stream of ours
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acks ------------------------------------------------------------------------------
    def ack(self, platform_id: int, seq: int) -> None:
        """Record that a platform acknowledged its stream through ``seq``; written shortly."""
        with self._lock:
            if seq <= self._acks.get(platform_id, -1):
                return
            self._acks[platform_id] = seq
            many = len(self._acks) >= ACK_FLUSH_PLATFORMS
        self._pending.set()
        if many:
            self._full.set()

    def take_ack(self, platform_id: int) -> dict[int, int]:
        """Remove a platform's pending ack, for its session to write in its own transaction."""
        with self._lock:
            seq = self._acks.pop(platform_id, None)
        return {} if seq is None else {platform_id: seq}

    def restore(self, acks: dict[int, int]) -> None:
        """Put back acks taken with ``take_ack`` that could not be written."""
        for platform_id, seq in acks.items():
            self.ack(platform_id, seq)

    def flush(self) -> None:
        """Write every pending ack in one transaction; on failure they stay pending."""
        with self._lock:
            acks, self._acks = self._acks, {}
        if not acks:
            return
        try:
            with self.db.write() as session:
                outcomes.ack_through_each(session, acks)
        except Exception:
            self.restore(acks)
            raise

    # -- sessions and leases ---------------------------------------------------------------
    def join(self, member: StreamMember) -> None:
        """Keep a session's lease from now on (it took it with ``leases.take_over``)."""
        with self._lock:
            self._members[member.owner] = member
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="ws-keeper", daemon=True)
                self._thread.start()

    def leave(self, member: StreamMember) -> None:
        with self._lock:
            self._members.pop(member.owner, None)

    def leases_moved(self, platform_ids: set[int]) -> None:
        """These streams changed owner somewhere: if a session of this process serves one of
        them, renew now (the renewal, under the write lock, decides who lost)."""
        with self._lock:
            ours = any(m.platform_id in platform_ids for m in self._members.values())
        if ours:
            self._renew_now.set()
            self._pending.set()
            self._full.set()

    def renew(self) -> None:
        """Renew all leases in one statement; tell the sessions that lost theirs, and cut those
        whose platform stopped reading (a frame waiting over ``send_timeout``)."""
        with self._lock:
            members = list(self._members.values())
        if not members:
            return
        with self.db.write() as session:
            held = leases.renew(session, self.owner_prefix, self.lease_seconds)
        for member in members:
            if member.owner not in held:
                member.lease_lost()
            else:
                member.check_socket(self.send_timeout)

    def _run(self) -> None:
        next_renewal = time.monotonic() + self.renew_every
        while not self._stopping.is_set():
            if self._pending.wait(max(0.0, next_renewal - time.monotonic())):
                self._full.wait(ACK_FLUSH_SECONDS)  # let acks gather
            self._pending.clear()
            self._full.clear()
            try:
                self.flush()
                if self._renew_now.is_set() or time.monotonic() >= next_renewal:
                    self._renew_now.clear()
                    self.renew()
                    next_renewal = time.monotonic() + self.renew_every
            except Exception:
                log.exception("writing WebSocket acks or leases failed; retrying")
                self._stopping.wait(RETRY_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and write the acks still pending."""
        with self._lock:
            self._stopping.set()
            thread = self._thread
        self._pending.set()
        self._full.set()
        if thread is not None:
            thread.join(timeout)
        try:
            self.flush()
        except Exception:
            log.exception("could not write the last WebSocket acks")
