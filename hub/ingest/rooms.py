"""``POST /room``: save a platform's room with its members and tell the platforms concerned."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.ingest.checks import Answer, attached, saved
from hub.ingest.directory import resolve_members, upsert_room
from hub.models import EventKind, Platform
from hub.outbox.enqueue import enqueue_each
from hub.routing.payloads import room_payload
from hub.routing.receivers import room_receivers


def save_room(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Create or update a room of the calling platform and forward it to those concerned."""
    members = resolve_members(session, data["users"])
    platform = attached(session, caller)
    result, left = upsert_room(session, platform, data["id"], data["name"], data["type"], members)
    room = result.row
    if result.changed:
        payload = room_payload(room)
        receivers = room_receivers(session, room, source=room.platform_id, extra=left)
        enqueue_each(session, EventKind.ROOM, [(r.id, payload) for r in receivers])
    return saved("room", room.global_id, result.created, result.changed)
