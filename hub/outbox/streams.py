"""The durable per-platform streams: enqueue, read the head, acknowledge, retry, dead-letter.

Every function takes the caller's session and never commits: the caller's transaction decides.
Platforms whose streams got new events are collected in ``session.info`` so that the database
layer can wake their delivery workers once the transaction has committed.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from hub.db import WAKE_KEY
from hub.db.plain_sql import PlainStatement, execute_many, fetch, stored_time
from hub.models import EventKind, EventStatus, Health, OutboxEvent, Platform, utcnow


def new_event_id() -> str:
    """Return a fresh hub-wide event id (sent as ``webhook-id``)."""
    return f"evt_{uuid.uuid4().hex}"


def encode_payload(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


# Registering a platform sends it everything that exists; on PostgreSQL (READ COMMITTED) a user
# or room committed meanwhile by another transaction would be seen by neither side. Enqueuers
# share this lock; registration takes it alone. SQLite serializes writers anyway.
_DIRECTORY_LOCK = 727_364_002


def _bulk(model: Any) -> Any:
    """An UPDATE of many rows that skips the ORM's session synchronisation (several times
    cheaper; no function here relies on objects already loaded in the session)."""
    return update(model).execution_options(synchronize_session=False)


def lock_directory(session: Session | Connection, exclusive: bool = False) -> None:
    """Order this transaction against platform registrations (PostgreSQL only)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        session.execute(text(f"SELECT {function}(:key)"), {"key": _DIRECTORY_LOCK})


def _reserve_seqs(session: Session, platform_id: int, count: int) -> int:
    """Take ``count`` seqs of a platform's stream under its row lock; return the first."""
    platforms = Platform.__table__  # a Core update: this runs once per receiver per message
    last = (
        session.connection()
        .execute(
            update(platforms)
            .where(platforms.c.id == platform_id)
            .values(last_seq=platforms.c.last_seq + count)
            .returning(platforms.c.last_seq)
        )
        .scalar_one()
    )
    return last - count + 1


_PLATFORMS = Platform.__table__
_EVENTS = OutboxEvent.__table__
# Statements of the hot paths, built once (building them cost more than running them).
_INSERT_EVENTS = _EVENTS.insert()
# A message's fan-out runs on the plain cursor (hub/plain_sql.py): every message takes them.
_NEXT_SEQ = PlainStatement(
    f"UPDATE {_PLATFORMS.name} SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
)
_INSERT_EVENT = PlainStatement(
    f"INSERT INTO {_EVENTS.name} (event_id, platform_id, seq, kind, payload, message_id,"
    " status, attempts, created_at, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
)


@functools.cache
def _next_seq_each(count: int) -> PlainStatement:
    marks = ", ".join("?" * count)
    return PlainStatement(
        f"UPDATE {_PLATFORMS.name} SET last_seq = last_seq + 1 WHERE id IN ({marks})"
        " RETURNING id, last_seq"
    )


_PENDING_AFTER = (
    select(
        _EVENTS.c.id,
        _EVENTS.c.event_id,
        _EVENTS.c.seq,
        _EVENTS.c.kind,
        _EVENTS.c.payload,
        _EVENTS.c.queued_at,
        _EVENTS.c.attempts,
    )
    .where(
        _EVENTS.c.platform_id == bindparam("platform_id"),
        _EVENTS.c.status == EventStatus.PENDING,
        _EVENTS.c.seq > bindparam("after"),
    )
    .order_by(_EVENTS.c.seq)
    .limit(bindparam("limit"))
)
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


def reserve_one_each(connection: Connection, platform_ids: list[int]) -> dict[int, int]:
    """Take the next seq of each platform's stream; return them by platform id. On PostgreSQL
    each platform's row stays locked until the transaction ends."""
    if not platform_ids:
        return {}
    if connection.dialect.name != "sqlite":
        # One row lock at a time, in the order given: concurrent fan-outs lock in one order.
        return {pid: fetch(connection, _NEXT_SEQ, (pid,))[0][0] for pid in platform_ids}
    # SQLite has one writer at a time: one statement for all of them.
    return dict(fetch(connection, _next_seq_each(len(platform_ids)), platform_ids))


def _event_row(
    platform_id: int, seq: int, kind: EventKind, payload: dict[str, Any], message_id: int | None,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": new_event_id(),
        "platform_id": platform_id,
        "seq": seq,
        "kind": kind,
        "payload": encode_payload(payload),
        "message_id": message_id,
        "status": EventStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "queued_at": now,
    }


def enqueue(
    session: Session,
    platform_id: int,
    kind: EventKind,
    payloads: Sequence[dict[str, Any]],
    message_id: int | None = None,
) -> list[str]:
    """Append events to a platform's stream, in order; return their event ids."""
    if not payloads:
        return []
    first = _reserve_seqs(session, platform_id, len(payloads))
    now = utcnow()
    rows = [
        _event_row(platform_id, first + offset, kind, payload, message_id, now)
        for offset, payload in enumerate(payloads)
    ]
    session.connection().execute(_INSERT_EVENTS, rows)
    session.info.setdefault(WAKE_KEY, set()).add(platform_id)
    return [row["event_id"] for row in rows]


def enqueue_each(
    session: Session,
    kind: EventKind,
    events: Sequence[tuple[int, dict[str, Any]]],
    message_id: int | None = None,
    connection: Connection | None = None,
    seqs: dict[int, int] | None = None,
) -> None:
    """Append one event to each of several platforms' streams (a message's fan-out), with one
    INSERT for all of them. Seqs are taken in the order given (platform id order keeps
    PostgreSQL's row locks in one order across transactions), unless ``seqs`` gives those
    the caller took with ``reserve_one_each``."""
    if not events:
        return
    connection = connection or session.connection()
    if seqs is None:
        seqs = reserve_one_each(connection, [platform_id for platform_id, _ in events])
    now = stored_time(connection, utcnow())
    kind_value, pending = kind.value, EventStatus.PENDING.value  # psycopg sends Enum names
    rows = [
        (
            new_event_id(),
            pid,
            seqs[pid],
            kind_value,
            encode_payload(payload),
            message_id,
            pending,
            now,  # created_at
            now,  # queued_at
        )
        for pid, payload in events
    ]
    execute_many(connection, _INSERT_EVENT, rows)
    session.info.setdefault(WAKE_KEY, set()).update(platform_id for platform_id, _ in events)


@dataclass(frozen=True)
class QueuedEvent:
    """One event as delivery needs it, detached from any session."""

    id: int
    event_id: str
    seq: int
    kind: str
    payload: str
    queued_at: datetime
    attempts: int


def pending_head(session: Session, platform_id: int, limit: int) -> list[QueuedEvent]:
    """Return the first pending events of a platform's stream, in seq order."""
    return pending_after(session, platform_id, 0, limit)


def pending_after(
    session: Session, platform_id: int, after_seq: int, limit: int
) -> list[QueuedEvent]:
    """Return pending events of a platform's stream with a seq above ``after_seq``, in order."""
    rows = session.connection().execute(
        _PENDING_AFTER, {"platform_id": platform_id, "after": after_seq, "limit": limit}
    )
    return [
        QueuedEvent(r.id, r.event_id, r.seq, str(r.kind), r.payload, r.queued_at, r.attempts)
        for r in rows
    ]


def _ack_params(platform_id: int, seq: int, now: datetime) -> dict[str, Any]:
    return {"ack_platform": platform_id, "ack_through": seq, "ack_now": now}


def ack_through(session: Session, platform_id: int, seq: int) -> int:
    """Acknowledge every pending event of a platform up to ``seq`` (cumulative); return how many."""
    result = session.connection().execute(_ACK_THROUGH, _ack_params(platform_id, seq, utcnow()))
    return result.rowcount or 0


def ack_through_each(session: Session, acks: dict[int, int]) -> None:
    """``ack_through`` for several platforms (platform id -> acked seq), in one statement."""
    if acks:
        now = utcnow()
        params = [_ack_params(platform_id, seq, now) for platform_id, seq in acks.items()]
        session.connection().execute(_ACK_THROUGH, params)


def skip(session: Session, event_row_id: int, reason: str) -> None:
    """Set an event aside that the platform does not take: not an error, never retried."""
    session.execute(
        _bulk(OutboxEvent)
        .where(OutboxEvent.id == event_row_id)
        .values(status=EventStatus.SKIPPED, last_error=reason, attempts=OutboxEvent.attempts + 1)
    )


def mark_delivered(session: Session, event_ids: Iterable[int]) -> None:
    """Acknowledge events (by row id); a redelivered ack changes nothing."""
    ids = list(event_ids)
    if ids:
        session.connection().execute(_MARK_DELIVERED, {"ids": ids, "now": utcnow()})


def dead_letter(session: Session, event_row_id: int, error: str) -> None:
    """Set an event aside for good, keeping the error; later events go on."""
    session.execute(
        _bulk(OutboxEvent)
        .where(OutboxEvent.id == event_row_id)
        .values(
            status=EventStatus.DEAD,
            dead_at=utcnow(),
            last_error=error,
            attempts=OutboxEvent.attempts + 1,
        )
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
        _bulk(OutboxEvent)
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
    )
    return result.rowcount or 0


def record_failure(session: Session, event_row_id: int, error: str) -> None:
    """Count a failed attempt on the head event and keep its error."""
    session.execute(
        _bulk(OutboxEvent)
        .where(OutboxEvent.id == event_row_id)
        .values(attempts=OutboxEvent.attempts + 1, last_error=error)
    )


def requeue_dead(session: Session, event_id: str) -> OutboxEvent | None:
    """Put a dead letter back at the end of its platform's stream, keeping its event id."""
    event = session.execute(
        select(OutboxEvent).where(
            OutboxEvent.event_id == event_id, OutboxEvent.status == EventStatus.DEAD
        )
    ).scalar_one_or_none()
    if event is None:
        return None
    event.seq = _reserve_seqs(session, event.platform_id, 1)
    event.status = EventStatus.PENDING
    event.dead_at = None
    event.attempts = 0
    event.queued_at = utcnow()  # its maximum age counts again from now
    session.info.setdefault(WAKE_KEY, set()).add(event.platform_id)
    return event


def mark_up(session: Session, platform_id: int) -> None:
    """Record that a platform answers again: its stream may flow at once."""
    session.execute(
        _bulk(Platform)
        .where(Platform.id == platform_id)
        .values(health=Health.UP, failures=0, next_attempt_at=None, last_success_at=utcnow())
    )
    session.info.setdefault(WAKE_KEY, set()).add(platform_id)


def mark_down(session: Session, platform_id: int, error: str, retry_at: datetime) -> int:
    """Record a failed call: the platform is down until ``retry_at``; return its failure count."""
    return session.execute(
        _bulk(Platform)
        .where(Platform.id == platform_id)
        .values(
            health=Health.DOWN,
            failures=Platform.failures + 1,
            last_error=error,
            next_attempt_at=retry_at,
        )
        .returning(Platform.failures)
    ).scalar_one()


def acquire_lease(session: Session, platform_id: int, owner: str, seconds: float) -> bool:
    """Own a platform's stream for ``seconds`` unless another live process owns it."""
    now = utcnow()
    result = session.execute(
        _bulk(Platform)
        .where(
            Platform.id == platform_id,
            or_(
                Platform.lease_owner.is_(None),
                Platform.lease_owner == owner,
                Platform.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)


def release_leases(session: Session, owner_prefix: str) -> None:
    """Give up every stream owned by a worker whose owner id starts with ``owner_prefix``."""
    session.execute(
        _bulk(Platform)
        .where(Platform.lease_owner.startswith(owner_prefix, autoescape=True))
        .values(lease_owner=None, lease_until=None)
    )


def pending_count(session: Session, platform_id: int) -> int:
    """Count a platform's pending events (on the stream index)."""
    return session.execute(
        select(func.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.platform_id == platform_id, OutboxEvent.status == EventStatus.PENDING)
    ).scalar_one()


def queue_stats(session: Session) -> dict[int, tuple[int, datetime | None]]:
    """Return, per platform id, the number of pending events and the oldest one's time."""
    rows = session.execute(
        select(OutboxEvent.platform_id, func.count(), func.min(OutboxEvent.queued_at))
        .where(OutboxEvent.status == EventStatus.PENDING)
        .group_by(OutboxEvent.platform_id)
    ).all()
    return {platform_id: (count, oldest) for platform_id, count, oldest in rows}
