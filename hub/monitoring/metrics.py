"""Prometheus metrics: delivery counters kept in process, queue gauges read from the database."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.db import Database
from hub.models import Health
from hub.monitoring.status import platform_statuses

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
            statuses = platform_statuses(session)
        for s in statuses:
            depth.add_metric([s.name], s.queue_depth)
            age.add_metric([s.name], s.oldest_pending_age or 0.0)
            up.add_metric([s.name], 1.0 if s.health == Health.UP else 0.0)
            dead.add_metric([s.name], s.dead_letters)
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
