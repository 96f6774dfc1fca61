"""Who receives what, and the payload each receiver gets in its own terms."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Message, Platform, Room, User
from hub.outbox import lock_directory


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


def message_receivers(session: Session, room: Room, sender_platform_id: int) -> list[Platform]:
    """Platforms a message in this room goes to: members' (all, if public), minus the sender's."""
    wanted = member_platform_ids(room) | {room.platform_id}
    return [
        p
        for p in active_platforms(session, exclude=sender_platform_id)
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


def message_payload(
    message: Message, room: Room, sender: User, receiver: Platform
) -> dict[str, Any]:
    """Render a message for one receiver: its recipients in its own local ids."""
    payload: dict[str, Any] = {
        "id": message.id,
        "roomOriginalPlatform": room.platform.name,
        "roomId": room.local_value,
        "roomGlobalId": room.global_id,
        "senderId": sender.local_value,
        "senderPlatform": sender.platform.name,
        "senderGlobalId": sender.global_id,
        "senderName": sender.name,
        "text": message.text,
        "sentAt": message.sent_at.isoformat(timespec="milliseconds") + "Z",
        "attachments": list(message.attachments or []),
    }
    if receiver.wants_recipients:
        payload["recipients"] = [
            m.user.local_value
            for m in sorted(room.members, key=lambda m: m.user_id)
            if m.user.platform_id == receiver.id
        ]
    return payload
