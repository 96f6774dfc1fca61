"""The delivery loop: one worker per pushing platform claims its stream's head and sends it.

A worker owns its platform's stream through a lease in the database, so with several hub
processes exactly one sends a platform's events, in seq order; a crashed owner's lease runs out.
No transaction is held open across an outbound call.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from adapters import Adapter, OutgoingEvent, PlatformTarget, adapter_for
from adapters.errors import DeliveryError, Permanent, Retryable, Unsupported
from hub.delivery.onboarding import pull_users
from hub.delivery.state import read_state
from hub.models import Health, Platform, utcnow
from hub.outbox import leases, outcomes
from hub.outbox.reader import QueuedEvent
from hub.wakeup.local import RECHECK_SECONDS

log = logging.getLogger(__name__)

# Acknowledged events are recorded as delivered at most this long after their answer (and
# always before the worker waits): one write a round would cost more than the sending.
RECORD_EVERY = 0.05


class PlatformWorker(threading.Thread):
    """Deliver one platform's stream, in order, for as long as this process owns it."""

    def __init__(self, dispatcher: Any, target: PlatformTarget) -> None:
        super().__init__(name=f"deliver-{target.name}", daemon=True)
        self.dispatcher = dispatcher
        self.target = target
        self.db = dispatcher.db
        self.cfg = dispatcher.config
        # Each worker owns leases under its own id, so a worker restarted in this process (after
        # the platform's entry changed) waits for the old one to hand the stream back.
        self.owner = f"{dispatcher.owner}/{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        # What this worker knows between rounds, so that a flowing stream costs one read per
        # round: the platform's health, whether events flow (state need not be re-read), when
        # the lease must be renewed, and events sent but not yet recorded as delivered.
        self._health = Health.UP
        self._failures = 0
        self._flowing = False
        self._renew_at = 0.0
        self._unflushed: list[int] = []
        self._record_at = 0.0
        # The seq of the last event this worker took care of: the next round reads after it,
        # so events sent but not yet recorded are not read again.
        self._last_sent = 0
        self._delivered_count = dispatcher.metrics.deliveries.labels(target.name, "delivered")

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        adapter = adapter_for(self.target, self.cfg["HUB_DELIVERY_TIMEOUT"])
        try:
            while not self._stopping.is_set():
                try:
                    pause = self.step(adapter)
                except Exception:  # a database hiccup must not kill the worker
                    log.exception("%s: delivery step failed", self.target.name)
                    self._flowing = False
                    pause = self.cfg["HUB_DELIVERY_POLL_INTERVAL"]
                if pause > 0:
                    self._wake.wait(pause)
                self._wake.clear()
        finally:
            adapter.close()
            try:
                with self.db.write() as session:
                    self._record(session)
                    leases.release(session, self.owner)
            except Exception:
                log.exception("%s: could not hand back the stream's lease", self.target.name)

    def step(self, adapter: Adapter) -> float:
        """Do one round of work; return how long to wait before the next."""
        idle = self.cfg["HUB_DELIVERY_POLL_INTERVAL"]
        if not self._flowing:
            # Down, backing off, not yet onboarded, or unknown: read the platform's state. Once
            # events flow, the worker knows it and skips this read (see _claim).
            state = read_state(self.db, self.dispatcher.reader, self.target.id)
            if state is None:
                self._stopping.set()
                return 0
            self._health, self._failures = state.health, state.failures
            if state.next_attempt_at is not None:
                remaining = (state.next_attempt_at - utcnow()).total_seconds()
                if remaining > 0:
                    # A /ping served by any process wakes it before (the wake-up).
                    return min(remaining, RECHECK_SECONDS)
            if state.users_synced and not state.has_pending:
                return RECHECK_SECONDS  # news wakes it
            if not state.users_synced:
                if not self._own_lease():
                    return idle
                try:
                    self._pull_users(adapter)
                except Retryable as exc:
                    return self._fail(None, exc)
        batch = self._claim()
        if batch is None:
            return idle  # another process owns the stream: look again for an expired lease
        self._flowing = True
        if not batch:
            return RECHECK_SECONDS  # news wakes it
        for event in batch:
            if self._stopping.is_set():
                break
            if time.monotonic() >= self._renew_at and not self._own_lease():
                return 0  # lost the lease: another process goes on from here
            try:
                adapter.send(OutgoingEvent(event.event_id, event.seq, event.kind, event.payload))
            except Retryable as exc:
                return self._fail(event, exc)
            except Unsupported as exc:
                self._skip(event, exc)
                self._last_sent = event.seq
                continue
            except Permanent as exc:
                self._dead_letter(event, exc)
                self._last_sent = event.seq
                continue
            self._sent(event)
            self._delivered_count.inc()
        return 0

    def _sent(self, event: QueuedEvent) -> None:
        """Remember an acknowledged event until the next write records it."""
        if not self._unflushed:
            self._record_at = time.monotonic() + RECORD_EVERY
        self._unflushed.append(event.id)
        self._last_sent = event.seq

    def _own_lease(self) -> bool:
        """Record what was sent, then take or renew the lease; False if another owns it."""
        with self.db.write() as session:
            self._record(session)
            return self._renew(session)

    def _renew(self, session: Any) -> bool:
        lease = self.cfg["HUB_LEASE_SECONDS"]
        if not leases.acquire(session, self.target.id, self.owner, lease):
            self._flowing, self._renew_at = False, 0.0
            return False
        self._renew_at = time.monotonic() + lease / 3
        return True

    def _claim(self) -> list[QueuedEvent] | None:
        """Read the next events of the stream; None if another process owns it.

        One plain-cursor read a round. A write transaction only to renew the lease before
        sending, and to record sent events as delivered every RECORD_EVERY seconds or before
        the worker waits: a busy stream costs a read per round rather than a write.
        """
        rows = self.dispatcher.reader.read(
            self.target.id, self._last_sent, self.cfg["HUB_DELIVERY_BATCH"]
        )
        now = time.monotonic()
        renew = bool(rows) and now >= self._renew_at
        record = bool(self._unflushed) and (
            not rows or now >= self._record_at or self._health != Health.UP
        )
        if renew or record:
            with self.db.write() as session:
                self._record(session)
                if renew and not self._renew(session):
                    return None
        return rows

    def _record(self, session: Any) -> None:
        """Mark the events sent since the last round delivered (and the platform up)."""
        if not self._unflushed:
            return
        outcomes.mark_delivered(session, self._unflushed)
        self._unflushed = []
        if self._health != Health.UP:
            leases.mark_up(session, self.target.id)
            self._health, self._failures = Health.UP, 0
            log.info("%s is up again; replaying its queue", self.target.name)

    def _pull_users(self, adapter: Adapter) -> None:
        if pull_users(self.db, self.target, adapter):
            self._health, self._failures = Health.UP, 0

    def _fail(self, event: QueuedEvent | None, exc: DeliveryError) -> float:
        policy = self.dispatcher.policy
        delay = policy.delay(self._failures + 1)
        now = utcnow()
        with self.db.write() as session:
            self._record(session)
            self._failures = leases.mark_down(
                session, self.target.id, exc.message, now + timedelta(seconds=delay)
            )
            if event is not None:
                outcomes.record_failure(session, event.id, exc.message)
                cutoff = now - timedelta(seconds=policy.dead_letter_after)
                if event.queued_at < cutoff:
                    expired = outcomes.dead_letter_expired(
                        session, self.target.id, cutoff, exc.message
                    )
                    self.dispatcher.metrics.deliveries.labels(self.target.name, "expired").inc(
                        expired
                    )
        self.dispatcher.metrics.deliveries.labels(self.target.name, "failed").inc()
        if self._health == Health.UP:
            log.warning("%s is down (%s); retrying in %.2fs", self.target.name, exc.message, delay)
        self._health, self._flowing = Health.DOWN, False
        return delay

    def _skip(self, event: QueuedEvent, exc: DeliveryError) -> None:
        with self.db.write() as session:
            self._record(session)
            outcomes.skip(session, event.id, exc.message)
            platform = session.get(Platform, self.target.id)
            if platform is not None and platform.takes_notifications:
                platform.takes_notifications = False
                log.info(
                    "%s takes no notifications (%s); none will be queued for it",
                    self.target.name,
                    exc.message,
                )
        self.dispatcher.metrics.deliveries.labels(self.target.name, "skipped").inc()

    def _dead_letter(self, event: QueuedEvent, exc: DeliveryError) -> None:
        with self.db.write() as session:
            self._record(session)
            outcomes.dead_letter(session, event.id, exc.message)
        self.dispatcher.metrics.deliveries.labels(self.target.name, "dead_letter").inc()
        log.warning(
            "%s rejected event %s (seq %d) for good: %s",
            self.target.name,
            event.event_id,
            event.seq,
            exc.message,
        )
