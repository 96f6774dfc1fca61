"""Scoped replay: send a platform again what it was already delivered, at the end of its stream.

A replayed copy is a new event: a new ``webhook-id`` and the next seq, with the original's
payload byte for byte (the message ``id`` inside stays the same). Keeping the webhook-id would
make every platform that drops duplicates by it, as the contract invites, drop the replay too,
and the original keeps its own row and delivery record. See docs/platform-guide.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.errors import NotFound
from hub.ids import global_id, parse_global_id
from hub.ingest.directory import platform_by_name
from hub.models import EventKind, EventStatus, OutboxEvent
from hub.outbox.enqueue import enqueue

# Where each kind of event names its room.
ROOM_FIELD = {EventKind.MESSAGE: "roomGlobalId", EventKind.ROOM: "globalId"}


def _room_key(session: Session, room_global_id: str) -> str:
    """Spell a room's global id as the hub does (platform names match in any case)."""
    name, local = parse_global_id(room_global_id)
    platform = platform_by_name(session, name)
    return global_id(platform.name, local) if platform else room_global_id


def _naive_utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; an aware time is converted, a naive one taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def replay_stream(
    session: Session,
    platform_name: str,
    from_seq: int | None = None,
    room_global_id: str | None = None,
    since: datetime | None = None,
) -> int:
    """Queue again, in their original order, the delivered events of a platform's stream.

    Filters combine: ``from_seq`` (seq at or above), ``room_global_id`` (only that room's room
    and message events), ``since`` (events first queued at or after it). Returns how many events
    were queued; raises ``NotFound`` for an unknown platform and ``ValueError`` for a room id
    that is not ``PLATFORM:ID``. Runs in the caller's write transaction.
    """
    platform = platform_by_name(session, platform_name)
    if platform is None:
        raise NotFound(f"unknown platform {platform_name!r}")
    statement = (
        select(OutboxEvent)
        .where(OutboxEvent.platform_id == platform.id, OutboxEvent.status == EventStatus.DELIVERED)
        .order_by(OutboxEvent.seq)
    )
    if from_seq is not None:
        statement = statement.where(OutboxEvent.seq >= from_seq)
    if since is not None:
        statement = statement.where(OutboxEvent.created_at >= _naive_utc(since))
    room = _room_key(session, room_global_id) if room_global_id is not None else None
    if room is not None:
        # A cheap text filter first; the parsed payload has the last word below.
        statement = statement.where(
            OutboxEvent.kind.in_(list(ROOM_FIELD)),
            or_(
                *(
                    OutboxEvent.payload.contains(
                        json.dumps({key: room}, ensure_ascii=False, separators=(",", ":"))[1:-1],
                        autoescape=True,
                    )
                    for key in set(ROOM_FIELD.values())
                )
            ),
        )
    events = list(session.execute(statement).scalars())
    count = 0
    for event in events:
        payload = json.loads(event.payload)
        if room is not None and payload.get(ROOM_FIELD[EventKind(event.kind)]) != room:
            continue
        enqueue(session, platform.id, EventKind(event.kind), [payload], event.message_id)
        count += 1
    return count
