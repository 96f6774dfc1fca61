"""Joining the hub: send a new platform what exists, take in the users it already has."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import EventKind, Platform, Room, User
from hub.outbox.enqueue import enqueue
from hub.routing.payloads import room_payload, user_payload
from hub.routing.receivers import concerns, member_platform_ids
from hub.usersync.reconcile import UserDiff, reconcile_users

log = logging.getLogger(__name__)


def send_existing(session: Session, platform: Platform) -> int:
    """Queue for a new platform every other platform's users and the rooms that concern it."""
    users = (
        session.execute(select(User).where(User.platform_id != platform.id).order_by(User.id))
        .scalars()
        .all()
    )
    enqueue(session, platform.id, EventKind.USER, [user_payload(u) for u in users])
    rooms = [
        room
        for room in session.execute(
            select(Room).where(Room.platform_id != platform.id).order_by(Room.id)
        ).scalars()
        if concerns(room.is_public, member_platform_ids(room), platform.id)
    ]
    enqueue(session, platform.id, EventKind.ROOM, [room_payload(r) for r in rooms])
    return len(users) + len(rooms)


def apply_users(session: Session, platform: Platform, users: list[Any]) -> UserDiff:
    """Register or rename a joining platform's users and forward each change to the others."""
    diff = reconcile_users(session, platform, users)
    if diff.invalid:
        log.warning("%s: skipped %d invalid users from GET users", platform.name, len(diff.invalid))
    return diff
