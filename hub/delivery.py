"""The delivery loop: one worker per pushing platform claims its stream's head and sends it.

A worker owns its platform's stream through a lease in the database, so with several hub
processes exactly one sends a platform's events, in seq order; a crashed owner's lease runs out.
No transaction is held open across an outbound call.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from adapters import ADAPTERS, Adapter, OutgoingEvent, PlatformTarget, adapter_for
from adapters.errors import DeliveryError, Permanent, Retryable
from hub import idempotency, outbox
from hub.db import Database
from hub.metrics import HubMetrics
from hub.models import Health, Platform, utcnow
from hub.onboarding import apply_users
from hub.retry import RetryPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamState:
    health: Health
    failures: int
    next_attempt_at: datetime | None
    users_synced: bool
    has_pending: bool


def _target(platform: Platform) -> PlatformTarget:
    return PlatformTarget(
        platform.id, platform.name, str(platform.transport), platform.endpoint, platform.token
    )


class PlatformWorker(threading.Thread):
    """Deliver one platform's stream, in order, for as long as this process owns it."""

    def __init__(self, dispatcher: Dispatcher, target: PlatformTarget) -> None:
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


class Dispatcher:
    """Start, wake and stop the delivery workers of this process."""

    def __init__(self, db: Database, config: dict[str, Any], metrics: HubMetrics) -> None:
        self.db = db
        self.config = config
        self.metrics = metrics
        self.policy = RetryPolicy.from_config(config)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workers: dict[int, PlatformWorker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refresh = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        self._supervisor = threading.Thread(target=self._supervise, name="delivery", daemon=True)
        self._supervisor.start()

    def wake(self, platform_ids: set[int]) -> None:
        """Tell the workers of these platforms that their streams have news."""
        with self._lock:
            for platform_id in platform_ids:
                worker = self.workers.get(platform_id)
                if worker is None:
                    self._refresh.set()
                else:
                    worker.wake()

    def refresh(self) -> None:
        """Re-read the registry soon (a platform was added, changed or removed)."""
        self._refresh.set()

    def _supervise(self) -> None:
        last_housekeeping = 0.0
        while not self._stop.is_set():
            try:
                self._sync_workers()
                if time.monotonic() - last_housekeeping > 60:
                    with self.db.write() as session:
                        idempotency.forget_expired(session, self.config["HUB_IDEMPOTENCY_TTL"])
                    last_housekeeping = time.monotonic()
            except Exception:
                log.exception("delivery supervisor round failed")
            self._refresh.wait(self.config["HUB_DELIVERY_POLL_INTERVAL"] * 5)
            self._refresh.clear()

    def _sync_workers(self) -> None:
        pushing = [name for name, cls in ADAPTERS.items() if cls.pushes]
        with self.db.read() as session:
            targets = {
                p.id: _target(p)
                for p in session.execute(
                    select(Platform).where(
                        Platform.enabled.is_(True), Platform.transport.in_(pushing)
                    )
                ).scalars()
            }
        with self._lock:
            for platform_id, worker in list(self.workers.items()):
                if targets.get(platform_id) != worker.target:
                    worker.stop()
                    del self.workers[platform_id]
            for platform_id, target in targets.items():
                if platform_id not in self.workers and not self._stop.is_set():
                    worker = PlatformWorker(self, target)
                    self.workers[platform_id] = worker
                    worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker and hand their streams back for other processes to take."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._refresh.set()
        with self._lock:
            workers = list(self.workers.values())
            self.workers.clear()
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        try:
            with self.db.write() as session:
                outbox.release_leases(session, self.owner + "/")
        except Exception:
            log.exception("could not release delivery leases")
