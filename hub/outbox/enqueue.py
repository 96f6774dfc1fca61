"""Append events to the platforms' streams: each event takes the next seq of its platform.

Every function takes the caller's session and never commits: the caller's transaction decides.
The platforms whose streams got events are collected in ``session.info`` (``news``), so that the
database layer wakes their consumers once the transaction has committed.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.orm import Session

from hub.db import news
from hub.db.lean import LeanStatement, execute_many, fetch, stored_time
from hub.models import EventKind, EventStatus, OutboxEvent, Platform, utcnow

_PLATFORMS = Platform.__table__
_EVENTS = OutboxEvent.__table__

# A new seq is not a change of the platform's entry: its updated_at stays.
_KEEP_UPDATED_AT = {"updated_at": _PLATFORMS.c.updated_at}
_NEXT_SEQ = LeanStatement(
    update(_PLATFORMS)
    .where(_PLATFORMS.c.id == bindparam("platform_id"))
    .values(last_seq=_PLATFORMS.c.last_seq + bindparam("count"), **_KEEP_UPDATED_AT)
    .returning(_PLATFORMS.c.last_seq)
)
_EVENT_COLUMNS = (
    "event_id", "platform_id", "seq", "kind", "payload", "message_id", "status",
    "attempts", "created_at", "queued_at",
)  # fmt: skip
_INSERT_EVENT = LeanStatement(
    insert(_EVENTS).values({name: bindparam(name) for name in _EVENT_COLUMNS})
)


@functools.cache
def _next_seq_each(count: int) -> LeanStatement:
    """One UPDATE taking the next seq of ``count`` platforms (SQLite: one writer at a time)."""
    ids = [bindparam(f"id{i}") for i in range(count)]
    return LeanStatement(
        update(_PLATFORMS)
        .where(_PLATFORMS.c.id.in_(ids))
        .values(last_seq=_PLATFORMS.c.last_seq + 1, **_KEEP_UPDATED_AT)
        .returning(_PLATFORMS.c.id, _PLATFORMS.c.last_seq)
    )


def new_event_id() -> str:
    """Return a fresh hub-wide event id (sent as ``webhook-id``)."""
    return f"evt_{uuid.uuid4().hex}"


def encode_payload(payload: dict[str, Any]) -> str:
    """The JSON text an event carries, rendered once: every retry sends the same bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def reserve_seqs(connection: Connection, platform_id: int, count: int) -> int:
    """Take ``count`` seqs of a platform's stream under its row lock; return the first."""
    values = {"platform_id": platform_id, "count": count}
    return fetch(connection, _NEXT_SEQ, values)[0][0] - count + 1


def reserve_one_each(connection: Connection, platform_ids: list[int]) -> dict[int, int]:
    """Take the next seq of each platform's stream; return them by platform id. On PostgreSQL
    each platform's row stays locked until the transaction ends."""
    if not platform_ids:
        return {}
    if connection.dialect.name != "sqlite":
        # One row lock at a time, in the order given: concurrent fan-outs lock in one order.
        return {pid: reserve_seqs(connection, pid, 1) for pid in platform_ids}
    values = {f"id{i}": pid for i, pid in enumerate(platform_ids)}
    return dict(fetch(connection, _next_seq_each(len(platform_ids)), values))


def _insert(
    session: Session,
    connection: Connection,
    kind: EventKind,
    events: Sequence[tuple[int, int, dict[str, Any]]],
    message_id: int | None,
) -> list[str]:
    """Insert ``(platform id, seq, payload)`` events in one statement; return their ids."""
    now = stored_time(connection.dialect, utcnow())
    rows = [
        {
            "event_id": new_event_id(),
            "platform_id": platform_id,
            "seq": seq,
            "kind": kind.value,  # stored by value; the driver would send an Enum's name
            "payload": encode_payload(payload),
            "message_id": message_id,
            "status": EventStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
            "queued_at": now,
        }
        for platform_id, seq, payload in events
    ]
    execute_many(connection, _INSERT_EVENT, rows)
    news(session).update(platform_id for platform_id, _, _ in events)
    return [row["event_id"] for row in rows]


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
    connection = session.connection()
    first = reserve_seqs(connection, platform_id, len(payloads))
    events = [(platform_id, first + offset, p) for offset, p in enumerate(payloads)]
    return _insert(session, connection, kind, events, message_id)


def enqueue_each(
    session: Session,
    kind: EventKind,
    events: Sequence[tuple[int, dict[str, Any]]],
    message_id: int | None = None,
    seqs: dict[int, int] | None = None,
) -> None:
    """Append one event to each of several platforms' streams (a message's fan-out), with one
    INSERT for all of them. Seqs are taken in the order given (platform id order keeps
    PostgreSQL's row locks in one order across transactions), unless ``seqs`` gives those
    the caller took with ``reserve_one_each``."""
    if not events:
        return
    connection = session.connection()
    if seqs is None:
        seqs = reserve_one_each(connection, [platform_id for platform_id, _ in events])
    _insert(session, connection, kind, [(pid, seqs[pid], p) for pid, p in events], message_id)
