"""What an operator looks at: each platform's health and stream, and the dead letters.

``platform_statuses`` is the one status query: the admin API, the ``/admin`` page, the
``flask hub platforms``/``queue`` commands and ``/metrics`` all read it. Never tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.models import EventStatus, OutboxEvent, Platform, User, utcnow


@dataclass(frozen=True)
class PlatformStatus:
    """One platform as the operator sees it; never its token."""

    name: str
    transport: str
    endpoint: str | None
    enabled: bool
    support_audio: bool
    support_image: bool
    wants_recipients: bool
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


def _pending(session: Session) -> dict[int, tuple[int, datetime | None]]:
    """Per platform id: the number of pending events and the oldest one's time."""
    rows = session.execute(
        select(OutboxEvent.platform_id, func.count(), func.min(OutboxEvent.queued_at))
        .where(OutboxEvent.status == EventStatus.PENDING)
        .group_by(OutboxEvent.platform_id)
    ).all()
    return {platform_id: (count, oldest) for platform_id, count, oldest in rows}


def platform_statuses(session: Session) -> list[PlatformStatus]:
    """Return every platform's health and stream figures, in registration order."""
    pending = _pending(session)
    users = _counts(session, User.platform_id)
    dead = _counts(session, OutboxEvent.platform_id, OutboxEvent.status == EventStatus.DEAD)
    now = utcnow()
    statuses = []
    for p in session.execute(select(Platform).order_by(Platform.id)).scalars():
        depth, oldest = pending.get(p.id, (0, None))
        statuses.append(
            PlatformStatus(
                name=p.name,
                transport=str(p.transport),
                endpoint=p.endpoint,
                enabled=p.enabled,
                support_audio=p.support_audio,
                support_image=p.support_image,
                wants_recipients=p.wants_recipients,
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


def pending_count(session: Session, platform_id: int) -> int:
    """Count a platform's pending events (on the stream index)."""
    return session.execute(
        select(func.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.platform_id == platform_id, OutboxEvent.status == EventStatus.PENDING)
    ).scalar_one()


def dead_letter_count(session: Session) -> int:
    """Count every dead letter."""
    return session.execute(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == EventStatus.DEAD)
    ).scalar_one()


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
