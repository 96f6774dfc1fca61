"""What an operator looks at: platforms' health and streams, dead letters (never tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.models import EventStatus, OutboxEvent, Platform, User, utcnow
from hub.outbox import streams as outbox


@dataclass(frozen=True)
class PlatformStatus:
    """One platform as the operator sees it; never its token."""

    name: str
    transport: str
    endpoint: str | None
    enabled: bool
    health: str
    users: int
    queue_depth: int
    oldest_pending_age: float | None  # seconds
    dead_letters: int
    last_seq: int
    last_error: str | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None


def _counts(
    session: Session, column: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> dict[int, int]:
    """Count rows per value of ``column`` (a platform id)."""
    statement = select(column, func.count()).where(*where).group_by(column)
    return {key: count for key, count in session.execute(statement).all()}


def platform_statuses(session: Session) -> list[PlatformStatus]:
    """Return every platform's health and stream figures, in registration order."""
    stats = outbox.queue_stats(session)
    users = _counts(session, User.platform_id)
    dead = _counts(session, OutboxEvent.platform_id, OutboxEvent.status == EventStatus.DEAD)
    now = utcnow()
    statuses = []
    for p in session.execute(select(Platform).order_by(Platform.id)).scalars():
        depth, oldest = stats.get(p.id, (0, None))
        statuses.append(
            PlatformStatus(
                name=p.name,
                transport=str(p.transport),
                endpoint=p.endpoint,
                enabled=p.enabled,
                health=str(p.health),
                users=users.get(p.id, 0),
                queue_depth=depth,
                oldest_pending_age=(now - oldest).total_seconds() if oldest else None,
                dead_letters=dead.get(p.id, 0),
                last_seq=p.last_seq,
                last_error=p.last_error,
                next_attempt_at=p.next_attempt_at,
                last_success_at=p.last_success_at,
            )
        )
    return statuses


def dead_letters(
    session: Session, platform_name: str | None = None, limit: int = 100
) -> list[tuple[OutboxEvent, str]]:
    """Return dead letters, newest first, with their platform's name."""
    statement = (
        select(OutboxEvent, Platform.name)
        .join(Platform, Platform.id == OutboxEvent.platform_id)
        .where(OutboxEvent.status == EventStatus.DEAD)
        .order_by(OutboxEvent.dead_at.desc(), OutboxEvent.id.desc())
        .limit(limit)
    )
    if platform_name:
        statement = statement.where(Platform.name_key == platform_name.lower())
    return [(event, name) for event, name in session.execute(statement).all()]


def requeue_platform_dead_letters(session: Session, platform: Platform) -> list[str]:
    """Queue every dead letter of a platform again, in their original order; return their ids."""
    ids = session.execute(
        select(OutboxEvent.event_id)
        .where(OutboxEvent.platform_id == platform.id, OutboxEvent.status == EventStatus.DEAD)
        .order_by(OutboxEvent.seq)
    ).scalars()
    requeued = []
    for event_id in list(ids):
        if outbox.requeue_dead(session, event_id) is not None:
            requeued.append(event_id)
    return requeued
