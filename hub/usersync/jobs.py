"""Run a job once per period across every hub process, and keep its report in ``job_runs``.

APScheduler 3.x fires a job in every process that runs a scheduler; the unique ``(job, period)``
row decides which one runs it. A process killed mid-run leaves a row without ``finished_at``:
that period is not run again, the next one is.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from hub.db import Database
from hub.models import JobRun, utcnow

log = logging.getLogger(__name__)


class Report(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Report)

OWNER = f"{socket.gethostname()}:{os.getpid()}"


def manual_period() -> str:
    """Return a period key of its own for a run asked for by hand."""
    return f"manual {utcnow().isoformat(timespec='seconds')} {uuid.uuid4().hex[:8]}"


def claim(db: Database, job: str, period: str) -> bool:
    """Insert the run's row; return False if another process already has this period."""
    try:
        with db.write() as session:
            session.add(JobRun(job=job, period=period, owner=OWNER, started_at=utcnow()))
    except IntegrityError:
        return False
    return True


def run_once(db: Database, job: str, period: str, work: Callable[[], R]) -> R | None:
    """Run ``work`` if this process wins the period; record its report; None if it lost."""
    if not claim(db, job, period):
        log.info("%s for %s already runs elsewhere; skipped here", job, period)
        return None
    report: dict[str, Any] = {"error": "the run failed; see the hub's log"}
    try:
        result = work()
        report = result.to_dict()
        return result
    finally:
        with db.write() as session:
            session.execute(
                update(JobRun)
                .where(JobRun.job == job, JobRun.period == period)
                .values(finished_at=utcnow(), report=report)
            )
