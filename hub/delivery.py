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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapters import Adapter, OutgoingEvent, PlatformTarget, adapter_for
from adapters.errors import DeliveryError, Permanent, Retryable, Unsupported
from hub import outbox
from hub.models import Health, Platform, utcnow
from hub.onboarding import apply_users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamState:
    health: Health
    failures: int
    next_attempt_at: datetime | None
    users_synced: bool
    has_pending: bool


def target_of(platform: Platform) -> PlatformTarget:
    """What a transport needs to reach a platform."""
    return PlatformTarget(
        platform.id, platform.name, str(platform.transport), platform.endpoint, platform.token
    )


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
                    pause = self.cfg["HUB_DELIVERY_POLL_INTERVAL"]
                if pause > 0:
                    self._wake.wait(pause)
                self._wake.clear()
        finally:
            adapter.close()
            try:
                with self.db.write() as session:
                    outbox.release_leases(session, self.owner)
            except Exception:
                log.exception("%s: could not hand back the stream's lease", self.target.name)

    def _state(self) -> StreamState | None:
        with self.db.read() as session:
            platform = session.get(Platform, self.target.id)
            if platform is None:
                return None
            has_pending = bool(outbox.pending_head(session, platform.id, 1))
            return StreamState(
                platform.health,
                platform.failures,
                platform.next_attempt_at,
                platform.users_synced_at is not None,
                has_pending,
            )

    def step(self, adapter: Adapter) -> float:
        """Do one round of work; return how long to wait before the next."""
        idle = self.cfg["HUB_DELIVERY_POLL_INTERVAL"]
        state = self._state()
        if state is None:
            self._stopping.set()
            return 0
        if state.next_attempt_at is not None:
            remaining = (state.next_attempt_at - utcnow()).total_seconds()
            if remaining > 0:
                # Re-read now and then: a /ping served by another process clears the wait.
                return min(remaining, idle)
        if state.users_synced and not state.has_pending:
            return idle
        lease = self.cfg["HUB_LEASE_SECONDS"]
        with self.db.write() as session:
            if not outbox.acquire_lease(session, self.target.id, self.owner, lease):
                return idle
            batch = outbox.pending_head(session, self.target.id, self.cfg["HUB_DELIVERY_BATCH"])
        leased_at = time.monotonic()
        if not state.users_synced:
            try:
                self._pull_users(adapter)
            except Retryable as exc:
                return self._fail(state, None, exc)
        delivered: list[int] = []
        for event in batch:
            if self._stopping.is_set():
                break
            if time.monotonic() - leased_at > lease / 3:
                if not self._flush(delivered, state, renew=True):
                    return 0  # lost the lease: another process goes on from here
                delivered, leased_at = [], time.monotonic()
            try:
                adapter.send(OutgoingEvent(event.event_id, event.seq, event.kind, event.payload))
            except Retryable as exc:
                self._flush(delivered, state)
                return self._fail(state, event, exc)
            except Unsupported as exc:
                self._flush(delivered, state)
                delivered = []
                self._skip(event, exc)
                continue
            except Permanent as exc:
                self._flush(delivered, state)
                delivered = []
                self._dead_letter(event, exc)
                continue
            delivered.append(event.id)
            self.dispatcher.metrics.deliveries.labels(self.target.name, "delivered").inc()
        self._flush(delivered, state)
        return 0

    def _pull_users(self, adapter: Adapter) -> None:
        try:
            users = adapter.fetch_users()
        except Permanent as exc:
            log.warning(
                "%s: GET users refused (%s); onboarding goes on without its users",
                self.target.name,
                exc.message,
            )
            users = []
        with self.db.write() as session:
            platform = session.get(Platform, self.target.id)
            if platform is not None:
                pulled = apply_users(session, platform, users)
                outbox.mark_up(session, platform.id)
                log.info(
                    "%s: pulled users: %d new, %d renamed, %d invalid",
                    self.target.name,
                    len(pulled.created),
                    len(pulled.renamed),
                    len(pulled.invalid),
                )

    def _flush(self, delivered: list[int], state: StreamState, renew: bool = False) -> bool:
        """Record acknowledged events (and that the platform is up); optionally renew the lease."""
        if not delivered and not renew and state.health == Health.UP:
            return True
        with self.db.write() as session:
            outbox.mark_delivered(session, delivered)
            if delivered and state.health != Health.UP:
                outbox.mark_up(session, self.target.id)
                log.info("%s is up again; replaying its queue", self.target.name)
            if renew:
                return outbox.acquire_lease(
                    session, self.target.id, self.owner, self.cfg["HUB_LEASE_SECONDS"]
                )
        return True

    def _fail(
        self, state: StreamState, event: outbox.QueuedEvent | None, exc: DeliveryError
    ) -> float:
        policy = self.dispatcher.policy
        delay = policy.delay(state.failures + 1)
        now = utcnow()
        with self.db.write() as session:
            outbox.mark_down(session, self.target.id, exc.message, now + timedelta(seconds=delay))
            if event is not None:
                outbox.record_failure(session, event.id, exc.message)
                cutoff = now - timedelta(seconds=policy.dead_letter_after)
                if event.queued_at < cutoff:
                    expired = outbox.dead_letter_expired(
                        session, self.target.id, cutoff, exc.message
                    )
                    self.dispatcher.metrics.deliveries.labels(self.target.name, "expired").inc(
                        expired
                    )
        self.dispatcher.metrics.deliveries.labels(self.target.name, "failed").inc()
        if state.health == Health.UP:
            log.warning("%s is down (%s); retrying in %.2fs", self.target.name, exc.message, delay)
        return delay

    def _skip(self, event: outbox.QueuedEvent, exc: DeliveryError) -> None:
        with self.db.write() as session:
            outbox.skip(session, event.id, exc.message)
            platform = session.get(Platform, self.target.id)
            if platform is not None and platform.takes_notifications:
                platform.takes_notifications = False
                log.info(
                    "%s takes no notifications (%s); none will be queued for it",
                    self.target.name,
                    exc.message,
                )
        self.dispatcher.metrics.deliveries.labels(self.target.name, "skipped").inc()

    def _dead_letter(self, event: outbox.QueuedEvent, exc: DeliveryError) -> None:
        with self.db.write() as session:
            outbox.dead_letter(session, event.id, exc.message)
        self.dispatcher.metrics.deliveries.labels(self.target.name, "dead_letter").inc()
        log.warning(
            "%s rejected event %s (seq %d) for good: %s",
            self.target.name,
            event.event_id,
            event.seq,
            exc.message,
        )
