"""The nightly schedule: period keys, the scheduler's life with the app, and firing once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hub import create_app
from hub.models import JobRun
from hub.usersync.scheduler import cron_trigger, crontab_weekdays, period_key
from tests.conftest import FAST
from tests.support.loopback_platform import wait_for


@pytest.mark.parametrize(
    ("cron", "now", "period"),
    [
        ("0 3 * * *", "2030-01-02T03:00:00.400", "2030-01-02T03:00:00+00:00"),
        ("0 3 * * *", "2030-01-02T03:41:07", "2030-01-02T03:00:00+00:00"),
        ("*/5 * * * *", "2030-01-02T10:07:30", "2030-01-02T10:05:00+00:00"),
        ("*/5 * * * *", "2030-01-02T10:05:00", "2030-01-02T10:05:00+00:00"),
        ("30 4 * * 1", "2030-01-07T04:31:09", "2030-01-07T04:30:00+00:00"),  # a Monday
        # Fired more than the misfire grace late: the minute it runs in stands for the period.
        ("0 3 * * *", "2030-01-02T05:12:45", "2030-01-02T05:12:00+00:00"),
    ],
)
def test_the_period_is_the_scheduled_fire_time(cron: str, now: str, period: str) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert period_key(cron_trigger(cron), moment) == period


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,SUN", "sun,sat"),
        ("fri-sun", "sun,fri,sat"),
    ],
)
def test_weekdays_keep_their_crontab_meaning(field: str, days: str) -> None:
    # APScheduler counts days from Monday; crontab from Sunday.
    assert crontab_weekdays(field) == days


def test_monday_in_crontab_is_monday() -> None:
    fire = cron_trigger("0 3 * * 1").get_next_fire_time(None, datetime(2030, 1, 2, tzinfo=UTC))
    assert fire.strftime("%A %H:%M") == "Monday 03:00"


@pytest.mark.parametrize("cron", ["every night", "61 * * * *", "0 3 * * 9", "0 3 * * 1-"])
def test_a_bad_cron_expression_names_the_setting(cron: str) -> None:
    with pytest.raises(ValueError, match="HUB_SYNC_CRON"):
        cron_trigger(cron)


def test_a_server_starts_the_scheduler_and_close_stops_it(database_url) -> None:
    settings = {**FAST, "HUB_DATABASE_URL": database_url, "HUB_LOAD_PLATFORMS": False}
    app = create_app({**settings, "HUB_SCHEDULER": True, "HUB_SYNC_CRON": "30 4 * * *"})
    hub = app.extensions["hub"]
    assert not hub.scheduler.running  # building the app starts nothing
    hub.serve()
    assert hub.scheduler.running
    next_run = hub.scheduler.next_run_time()
    assert (next_run.hour, next_run.minute, next_run.utcoffset().total_seconds()) == (4, 30, 0)
    hub.close()
    assert not hub.scheduler.running
    off = create_app({**settings, "HUB_SCHEDULER": False}).extensions["hub"]
    off.serve()
    assert not off.scheduler.running
    off.close()
    bad = create_app({**settings, "HUB_SCHEDULER": True, "HUB_SYNC_CRON": "61 * * * *"})
    try:
        with pytest.raises(ValueError, match="HUB_SYNC_CRON"):
            bad.extensions["hub"].serve()
    finally:
        bad.extensions["hub"].close()


def test_firing_runs_the_sync_once_per_period(platforms, make_hub) -> None:
    a = platforms("A", users=[{"id": 1, "name": "alice"}])
    b = platforms("B")
    hub = make_hub(a, b, HUB_SYNC_CRON="0 3 * * *")
    wait_for(lambda: len(b.acked("user")) == 1)
    scheduler = hub.hub.scheduler
    first = scheduler.fire(datetime(2030, 1, 2, 3, 0, 0, 300_000, tzinfo=UTC))
    assert first is not None and [p.platform for p in first.platforms] == ["A", "B"]
    # The same night seen a few seconds later (another process, a late wake-up): not again.
    assert scheduler.fire(datetime(2030, 1, 2, 3, 0, 4, tzinfo=UTC)) is None
    assert scheduler.fire(datetime(2030, 1, 3, 3, 0, 1, tzinfo=UTC)) is not None
    with hub.hub.db.read() as session:
        periods = session.execute(select(JobRun.period).order_by(JobRun.id)).scalars().all()
    assert periods == ["2030-01-02T03:00:00+00:00", "2030-01-03T03:00:00+00:00"]
