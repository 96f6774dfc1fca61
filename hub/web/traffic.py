"""Recent traffic: messages per minute over the last hour, and the bars that draw it as SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from hub.models import Message

MINUTES = 60
# The chart's drawing box (SVG user units); the CSS scales it to the page's width.
WIDTH, HEIGHT, TOP = 600, 120, 16


@dataclass(frozen=True)
class Bar:
    """One minute of the chart: where its bar stands and what its tooltip says."""

    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Traffic:
    counts: list[int]  # oldest minute first; the last one is the current minute
    start: datetime

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)

    def bars(self) -> list[Bar]:
        """Lay the minutes out as bars scaled to the busiest one."""
        slot = WIDTH / len(self.counts)
        scale = (HEIGHT - TOP) / self.peak if self.peak else 0.0
        bars = []
        for index, count in enumerate(self.counts):
            height = count * scale
            minute = self.start + timedelta(minutes=index)
            noun = "message" if count == 1 else "messages"
            bars.append(
                Bar(
                    x=round(index * slot + 1, 2),
                    y=round(HEIGHT - height, 2),
                    width=round(slot - 2, 2),
                    height=round(height, 2),
                    count=count,
                    label=f"{minute:%H:%M} UTC: {count} {noun}",
                )
            )
        return bars


def messages_per_minute(session: Session, now: datetime, minutes: int = MINUTES) -> Traffic:
    """Count the messages sent in each of the last ``minutes`` minutes (the current one last).

    One query, one aggregate per minute: portable between SQLite and PostgreSQL, and it reads
    only the last hour through the index on ``sent_at``.
    """
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    edges = [start + timedelta(minutes=i) for i in range(minutes + 1)]
    columns = [
        func.coalesce(func.sum(case((and_(Message.sent_at >= lo, Message.sent_at < hi), 1))), 0)
        for lo, hi in pairwise(edges)
    ]
    row = session.execute(
        select(*columns).where(Message.sent_at >= start, Message.sent_at < edges[-1])
    ).one()
    return Traffic([int(value) for value in row], start)
