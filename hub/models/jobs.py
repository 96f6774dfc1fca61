"""Runs of scheduled jobs: one row per (job, period), the guard that runs a job once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, utcnow


class JobRun(Base):
    """One run of a job for one period; the process whose INSERT succeeds runs it."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_runs_job_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    # The scheduled fire time (ISO, UTC) for cron runs, "manual <time> <nonce>" on demand.
    period: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(128))  # host:pid of the running process
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
