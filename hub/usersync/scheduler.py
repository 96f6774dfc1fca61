"""The nightly user sync on ``HUB_SYNC_CRON`` (UTC), run once per period however many hubs run.

Every hub process that serves requests starts an APScheduler 3.x ``BackgroundScheduler`` (each
with its own in-memory job store, never shared). When the cron fires, each process computes the
period, the scheduled fire time, and ``hub.jobs.run_once`` lets only the first INSERT of
``(user-sync, period)`` run the sync. Keying by the scheduled time, not the clock at run time,
keeps processes whose clocks or wake-ups differ by seconds on the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from hub.db import Database
from hub.usersync import jobs
from hub.usersync import sync as user_sync

log = logging.getLogger(__name__)

# A fire missed by up to this long (a busy or suspended process) still runs, once.
MISFIRE_GRACE = timedelta(hours=1)


DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # crontab numbering: 0 (and 7) is Sunday


def _day(text: str) -> int:
    text = text.strip().lower()
    if text in DAYS:
        return DAYS.index(text)
    if not (text.isdigit() and int(text) <= 7):
        raise ValueError(f"not a day of the week: {text!r}")
    return int(text)


def crontab_weekdays(field: str) -> str:
    """Spell a crontab day-of-week field with day names.

    APScheduler 3.x numbers days from Monday (0) while crontab numbers them from Sunday (0 or
    7), and ``from_crontab`` passes numbers through: "1" would mean Tuesday. Names mean the same
    to both.
    """
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            start, dash, end = span.partition("-")
            first = _day(start)
            last = _day(end) if dash else (6 if step else first)
            last += 7 if last < first else 0  # fri-sun
        days.update(d % 7 for d in range(first, last + 1, int(step or 1)))
    return "*" if len(days) == 7 else ",".join(DAYS[d] for d in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """Parse a crontab expression (five fields, UTC); ValueError names the setting."""
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
        fields[4] = crontab_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid HUB_SYNC_CRON {expression!r}: {exc}") from exc


def period_key(trigger: CronTrigger, now: datetime, lookback: timedelta = MISFIRE_GRACE) -> str:
    """Return the latest fire time of ``trigger`` at or before ``now`` as an ISO UTC key."""
    latest = None
    fire = trigger.get_next_fire_time(None, now - lookback)
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if latest is None:  # fired later than the lookback: the minute it runs in is the period
        latest = now.replace(second=0, microsecond=0)
    return latest.astimezone(UTC).isoformat(timespec="seconds")


class SyncScheduler:
    """Start and stop this process's scheduler; run the sync for a period if no one else has."""

    def __init__(self, db: Database, config: Mapping[str, Any]) -> None:
        self.db = db
        self.config = config
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def next_run_time(self) -> datetime | None:
        """Return when the sync fires next in this process (None if not started)."""
        if not self.running:
            return None
        assert self._scheduler is not None
        job = self._scheduler.get_job(user_sync.JOB)
        return job.next_run_time if job else None

    def start(self) -> None:
        trigger = cron_trigger(self.config["HUB_SYNC_CRON"])
        scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
        scheduler.add_job(
            self.fire,
            trigger,
            id=user_sync.JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "user sync scheduled at %r (UTC), next at %s",
            self.config["HUB_SYNC_CRON"],
            self.next_run_time(),
        )

    def stop(self) -> None:
        """Stop firing; a sync already running finishes in its own thread."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def fire(self, now: datetime | None = None) -> user_sync.SyncReport | None:
        """Run the sync for the period that just fired (the job APScheduler calls)."""
        trigger = cron_trigger(self.config["HUB_SYNC_CRON"])
        return self.run_period(period_key(trigger, now or datetime.now(UTC)))

    def run_period(self, period: str) -> user_sync.SyncReport | None:
        """Run the sync for ``period`` unless another process did; None if it did."""
        try:
            return jobs.run_once(
                self.db,
                user_sync.JOB,
                period,
                lambda: user_sync.sync_users(self.db, self.config),
            )
        except Exception:  # a failed night must not kill the scheduler thread
            log.exception("user sync for %s failed", period)
            return None
