"""The payloads receivers get for users and rooms, rendered once when queued."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hub.models import Room, User


def user_payload(user: User) -> dict[str, Any]:
    """A user as every other platform gets it."""
    return {
        "id": user.local_value,
        "name": user.name,
        "platform": user.platform.name,
        "globalId": user.global_id,
    }


def room_members_payload(room: Room) -> list[dict[str, list[int | str]]]:
    """A room's members grouped by platform, each in its own local ids."""
    grouped: dict[str, list[int | str]] = defaultdict(list)
    for member in sorted(room.members, key=lambda m: m.user_id):
        grouped[member.user.platform.name].append(member.user.local_value)
    return [{name: ids} for name, ids in grouped.items()]


def room_payload(room: Room) -> dict[str, Any]:
    """A room as the platforms it concerns get it."""
    return {
        "id": room.local_value,
        "name": room.name,
        "type": room.type,
        "platform": room.platform.name,
        "globalId": room.global_id,
        "users": room_members_payload(room),
    }
