"""Prometheus metrics: delivery counters kept in process, queue gauges read from the database."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hub.db import Database
from hub.models import EventStatus, Health, OutboxEvent, Platform, utcnow
from hub.outbox import streams as outbox

disable_created_metrics()  # the *_created series only add noise to counters here


class QueueCollector(Collector):
    """Read queue depth, oldest pending age, health and dead letters at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "hub_queue_depth", "Pending events per platform", labels=["platform"]
        )
        age = GaugeMetricFamily(
            "hub_oldest_pending_age_seconds",
            "Age of the oldest pending event per platform",
            labels=["platform"],
        )
        up = GaugeMetricFamily(
            "hub_platform_up", "1 when the platform answers", labels=["platform"]
        )
        dead = GaugeMetricFamily(
            "hub_dead_letters", "Dead letters per platform", labels=["platform"]
        )
        with self.db.read() as session:
            platforms = session.execute(select(Platform.id, Platform.name, Platform.health)).all()
            stats = outbox.queue_stats(session)
            dead_counts = dict(
                session.execute(
                    select(OutboxEvent.platform_id, func.count())
                    .where(OutboxEvent.status == EventStatus.DEAD)
                    .group_by(OutboxEvent.platform_id)
                ).all()
            )
        now = utcnow()
        for platform_id, name, health in platforms:
            count, oldest = stats.get(platform_id, (0, None))
            depth.add_metric([name], count)
            age.add_metric([name], (now - oldest).total_seconds() if oldest else 0.0)
            up.add_metric([name], 1.0 if health == Health.UP else 0.0)
            dead.add_metric([name], dead_counts.get(platform_id, 0))
        yield from (depth, age, up, dead)


class HubMetrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "hub_deliveries",
            "Delivery attempts by outcome",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "hub_messages_accepted",
            "POST /message answered 202 (an idempotent replay counts again)",
            registry=self.registry,
        )
        self.registry.register(QueueCollector(db))

    def render(self) -> bytes:
        return generate_latest(self.registry)
