"""The dispatcher: start a delivery worker per pushing platform, wake, expire, and stop them."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters import transports
from hub.db import Database
from hub.delivery.retry import RetryPolicy
from hub.delivery.state import target_of
from hub.delivery.worker import PlatformWorker
from hub.ingest import idempotency
from hub.models import Platform, utcnow
from hub.monitoring.metrics import HubMetrics
from hub.outbox import leases, outcomes
from hub.outbox.reader import StreamReader

log = logging.getLogger(__name__)


class Dispatcher:
    """Start, wake and stop the delivery workers of this process."""

    def __init__(
        self,
        db: Database,
        config: dict[str, Any],
        metrics: HubMetrics,
        reader: StreamReader,
        owner: str,
    ) -> None:
        self.db = db
        self.config = config
        self.metrics = metrics
        self.policy = RetryPolicy.from_config(config)
        self.owner = owner  # this process's; each worker owns leases under owner/<tag>
        self.workers: dict[int, PlatformWorker] = {}
        self.reader = reader
        # Platforms that pull their events (websocket, poll): they never get a worker, so news on
        # their streams must not make the supervisor re-read the registry every time.
        self._pulled: frozenset[int] = frozenset()
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
                    if platform_id not in self._pulled:
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
                if time.monotonic() - last_housekeeping > self.config["HUB_HOUSEKEEPING_INTERVAL"]:
                    with self.db.write() as session:
                        idempotency.forget_expired(session, self.config["HUB_IDEMPOTENCY_TTL"])
                        self._expire_pulled_streams(session)
                    last_housekeeping = time.monotonic()
            except Exception:
                log.exception("delivery supervisor round failed")
            self._refresh.wait(self.config["HUB_DELIVERY_POLL_INTERVAL"] * 5)
            self._refresh.clear()

    def _expire_pulled_streams(self, session: Any) -> None:
        """Dead-letter what a websocket or poll platform has not taken within the maximum age."""
        cutoff = utcnow() - timedelta(seconds=self.policy.dead_letter_after)
        pulling_ids = select(Platform.id).where(Platform.transport.in_(transports(pushing=False)))
        outcomes.dead_letter_expired(session, pulling_ids, cutoff, "not taken by the platform")

    def apply_changes(self, timeout: float = 5.0) -> None:
        """Apply a registry change this process made before its caller answers: workers whose
        platform changed or went are stopped, waiting up to ``timeout`` for the step they are
        in, and new ones started. Otherwise an event queued right after the answer could still
        be sent by the old worker, to the old endpoint."""
        if self._supervisor is None or self._stop.is_set():
            self.refresh()  # no delivery in this process: whoever delivers re-reads the registry
            return
        for worker in self._sync_workers():
            worker.join(timeout)

    def _sync_workers(self) -> list[PlatformWorker]:
        """Start and stop workers to match the registry; return the ones stopped."""
        pushing = transports(pushing=True)
        with self.db.read() as session:
            self._pulled = frozenset(
                session.execute(
                    select(Platform.id).where(Platform.transport.not_in(pushing))
                ).scalars()
            )
            targets = {
                p.id: target_of(p)
                for p in session.execute(
                    select(Platform).where(
                        Platform.enabled.is_(True), Platform.transport.in_(pushing)
                    )
                ).scalars()
            }
        stopped = []
        with self._lock:
            for platform_id, worker in list(self.workers.items()):
                if targets.get(platform_id) != worker.target:
                    worker.stop()
                    stopped.append(worker)
                    del self.workers[platform_id]
            for platform_id, target in targets.items():
                if platform_id not in self.workers and not self._stop.is_set():
                    worker = PlatformWorker(self, target)
                    self.workers[platform_id] = worker
                    worker.start()
        return stopped

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
                leases.release(session, self.owner + "/")
        except Exception:
            log.exception("could not release delivery leases")
