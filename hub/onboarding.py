"""Joining the hub: send a new platform what exists, take in the users it already has."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import outbox
from hub.directory import upsert_user
from hub.ingest import forward_user
from hub.models import EventKind, Platform, Room, User, utcnow
from hub.routing import member_platform_ids, room_payload, user_payload
from hub.schemas import UserIn

log = logging.getLogger(__name__)


def send_existing(session: Session, platform: Platform) -> int:
    """Queue for a new platform every other platform's users and the rooms that concern it."""
    users = (
        session.execute(select(User).where(User.platform_id != platform.id).order_by(User.id))
        .scalars()
        .all()
    )
    outbox.enqueue(session, platform.id, EventKind.USER, [user_payload(u) for u in users])
    rooms = [
        room
        for room in session.execute(
            select(Room).where(Room.platform_id != platform.id).order_by(Room.id)
        ).scalars()
        if room.is_public or platform.id in member_platform_ids(room)
    ]
    outbox.enqueue(session, platform.id, EventKind.ROOM, [room_payload(r) for r in rooms])
    return len(users) + len(rooms)


@dataclass
class PulledUsers:
    """What taking in a platform's user list did."""

    created: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def apply_users(session: Session, platform: Platform, users: list[Any]) -> PulledUsers:
    """Register or rename the listed users and forward each change to the other platforms."""
    result = PulledUsers()
    schema = UserIn()
    for entry in users:
        try:
            data = schema.load(entry if isinstance(entry, dict) else {"_": entry})
        except ValidationError as exc:
            result.invalid.append(f"{entry!r}: {exc.messages}")
            continue
        change = upsert_user(session, platform, data["id"], data["name"])
        if change.changed:
            forward_user(session, change.row)
            (result.created if change.created else result.renamed).append(change.row.global_id)
    platform.users_synced_at = utcnow()
    if result.invalid:
        log.warning(
            "%s: skipped %d invalid users from GET users", platform.name, len(result.invalid)
        )
    return result
