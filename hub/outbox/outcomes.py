"""What became of events: acknowledged, set aside, dead-lettered, failed, or queued again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from hub.db import news
from hub.models import EventStatus, OutboxEvent, utcnow
from hub.outbox.enqueue import reserve_seqs

_EVENTS = OutboxEvent.__table__
# Built once: every ack and every delivered batch runs them.
_ACK_THROUGH = (
    update(_EVENTS)
    .where(
        _EVENTS.c.platform_id == bindparam("ack_platform"),
        _EVENTS.c.status == EventStatus.PENDING,
        _EVENTS.c.seq <= bindparam("ack_through"),
    )
    .values(
        status=EventStatus.DELIVERED,
        delivered_at=bindparam("ack_now"),
        attempts=_EVENTS.c.attempts + 1,
    )
)
_MARK_DELIVERED = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(bindparam("ids", expanding=True)))
    .where(_EVENTS.c.status == EventStatus.PENDING)
    .values(
        status=EventStatus.DELIVERED,
        delivered_at=bindparam("now"),
        attempts=_EVENTS.c.attempts + 1,
    )
)


def _event_update(event_row_id: int) -> Any:
    """An UPDATE of one event that skips the ORM's session synchronisation (no caller relies
    on objects already loaded in the session)."""
    return (
        update(OutboxEvent)
        .where(OutboxEvent.id == event_row_id)
        .execution_options(synchronize_session=False)
    )


def ack_through_each(session: Session, acks: dict[int, int]) -> int:
    """Acknowledge, per platform id, every pending event up to its seq (cumulative), in one
    statement; return how many events that delivered."""
    if not acks:
        return 0
    now = utcnow()
    params = [
        {"ack_platform": platform_id, "ack_through": seq, "ack_now": now}
        for platform_id, seq in acks.items()
    ]
    result = session.connection().execute(_ACK_THROUGH, params)
    return result.rowcount or 0


def mark_delivered(session: Session, event_ids: Iterable[int]) -> None:
    """Acknowledge events (by row id); a redelivered ack changes nothing."""
    ids = list(event_ids)
    if ids:
        session.connection().execute(_MARK_DELIVERED, {"ids": ids, "now": utcnow()})


def skip(session: Session, event_row_id: int, reason: str) -> None:
    """Set an event aside that the platform does not take: not an error, never retried."""
    session.execute(
        _event_update(event_row_id).values(
            status=EventStatus.SKIPPED, last_error=reason, attempts=OutboxEvent.attempts + 1
        )
    )


def dead_letter(session: Session, event_row_id: int, error: str) -> None:
    """Set an event aside for good, keeping the error; later events go on."""
    session.execute(
        _event_update(event_row_id).values(
            status=EventStatus.DEAD,
            dead_at=utcnow(),
            last_error=error,
            attempts=OutboxEvent.attempts + 1,
        )
    )


def record_failure(session: Session, event_row_id: int, error: str) -> None:
    """Count a failed attempt on the head event and keep its error."""
    session.execute(
        _event_update(event_row_id).values(attempts=OutboxEvent.attempts + 1, last_error=error)
    )


def dead_letter_expired(
    session: Session, platform_id: int | Any, older_than: datetime, error: str
) -> int:
    """Dead-letter every pending event queued before ``older_than`` of a platform (an id) or of
    several (a SELECT of ids, so that one statement covers them all)."""
    of_platform = (
        OutboxEvent.platform_id == platform_id
        if isinstance(platform_id, int)
        else OutboxEvent.platform_id.in_(platform_id)
    )
    result = session.execute(
        update(OutboxEvent)
        .where(
            of_platform,
            OutboxEvent.status == EventStatus.PENDING,
            OutboxEvent.queued_at < older_than,
        )
        .values(
            status=EventStatus.DEAD,
            dead_at=utcnow(),
            last_error=f"still failing after the maximum age: {error}",
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def requeue_dead(session: Session, event_id: str) -> OutboxEvent | None:
    """Put a dead letter back at the end of its platform's stream, keeping its event id."""
    event = session.execute(
        select(OutboxEvent).where(
            OutboxEvent.event_id == event_id, OutboxEvent.status == EventStatus.DEAD
        )
    ).scalar_one_or_none()
    if event is None:
        return None
    event.seq = reserve_seqs(session.connection(), event.platform_id, 1)
    event.status = EventStatus.PENDING
    event.dead_at = None
    event.attempts = 0
    event.queued_at = utcnow()  # its maximum age counts again from now
    news(session).add(event.platform_id)
    return event


def requeue_platform_dead_letters(session: Session, platform_id: int) -> list[str]:
    """Queue every dead letter of a platform again, in their original order; return their ids."""
    ids = session.execute(
        select(OutboxEvent.event_id)
        .where(OutboxEvent.platform_id == platform_id, OutboxEvent.status == EventStatus.DEAD)
        .order_by(OutboxEvent.seq)
    ).scalars()
    return [event_id for event_id in list(ids) if requeue_dead(session, event_id) is not None]
