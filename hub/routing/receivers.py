"""Who is told about users and rooms, and the payloads they get (messages: message_routing)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Platform, Room, User
from hub.outbox.streams import lock_directory


def active_platforms(session: Session, exclude: int | None = None) -> list[Platform]:
    """Return every enabled platform, but the one excluded, in registration order."""
    # Before reading who exists: a registration in flight either sees what this transaction
    # writes, or is seen by it (see outbox.lock_directory).
    lock_directory(session)
    query = select(Platform).where(Platform.enabled.is_(True)).order_by(Platform.id)
    return [p for p in session.execute(query).scalars() if p.id != exclude]


def member_platform_ids(room: Room) -> set[int]:
    return {m.user.platform_id for m in room.members}


def room_receivers(session: Session, room: Room, extra: set[int] = frozenset()) -> list[Platform]:
    """Platforms told about a room: members' platforms (all, if public), minus its origin."""
    wanted = member_platform_ids(room) | set(extra)
    return [
        p
        for p in active_platforms(session, exclude=room.platform_id)
        if room.is_public or p.id in wanted
    ]


def user_payload(user: User) -> dict[str, Any]:
    return {
        "id": user.local_value,
        "name": user.name,
        "platform": user.platform.name,
        "globalId": user.global_id,
    }


def room_members_payload(room: Room) -> list[dict[str, list[int | str]]]:
    grouped: dict[str, list[int | str]] = defaultdict(list)
    for member in sorted(room.members, key=lambda m: m.user_id):
        grouped[member.user.platform.name].append(member.user.local_value)
    return [{name: ids} for name, ids in grouped.items()]


def room_payload(room: Room) -> dict[str, Any]:
    return {
        "id": room.local_value,
        "name": room.name,
        "type": room.type,
        "platform": room.platform.name,
        "globalId": room.global_id,
        "users": room_members_payload(room),
    }
