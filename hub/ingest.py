"""The one path for what platforms send: validate against the directory, save, fan out.

Each function runs inside the caller's write transaction, so a message and its outbox events
are committed together or not at all. Both the HTTP API and (later) WebSocket calls use these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub import outbox
from hub.directory import (
    find_room,
    find_user,
    require_platform,
    resolve_members,
    upsert_room,
    upsert_user,
)
from hub.errors import BadRequest, Forbidden, NotFound
from hub.ids import global_id
from hub.models import EventKind, Message, Platform
from hub.routing import (
    active_platforms,
    message_payload,
    message_receivers,
    room_payload,
    room_receivers,
    user_payload,
)

Answer = tuple[dict[str, Any], int]


def _speaks_for_itself(caller: Platform, claimed: str | None) -> None:
    if claimed is not None and claimed.lower() != caller.name_key:
        raise Forbidden(f"{caller.name} cannot speak for users of {claimed}")


def save_user(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Create or update a user of the calling platform and forward it to every other one."""
    _speaks_for_itself(caller, data.get("platform"))
    result = upsert_user(session, caller, data["id"], data["name"])
    gid = result.row.global_id
    if result.changed:
        forward_user(session, result.row)
    status = 201 if result.created else 200
    verb = "created" if result.created else ("updated" if result.changed else "unchanged")
    return {"status": status, "message": f"user {gid} {verb}", "globalId": gid}, status


def forward_user(session: Session, user: Any) -> None:
    """Queue a user event for every enabled platform but the user's own."""
    payload = user_payload(user)
    for receiver in active_platforms(session, exclude=user.platform_id):
        outbox.enqueue(session, receiver.id, EventKind.USER, [payload])


def save_room(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Create or update a room of the calling platform and forward it to those concerned."""
    members = resolve_members(session, data["users"])
    result, left = upsert_room(session, caller, data["id"], data["name"], data["type"], members)
    room = result.row
    if result.changed:
        payload = room_payload(room)
        for receiver in room_receivers(session, room, extra=left):
            outbox.enqueue(session, receiver.id, EventKind.ROOM, [payload])
    status = 201 if result.created else 200
    verb = "created" if result.created else ("updated" if result.changed else "unchanged")
    return {
        "status": status,
        "message": f"room {room.global_id} {verb}",
        "globalId": room.global_id,
    }, status


def resolve_message(session: Session, caller: Platform, data: dict[str, Any]) -> tuple[Any, Any]:
    """Check a message's room and sender; return them, or raise the error that names the fault."""
    _speaks_for_itself(caller, data.get("senderPlatform"))
    if data.get("attachments"):
        unknown = ", ".join(map(str, data["attachments"]))
        raise BadRequest(
            f"unknown attachments: {unknown}", {"attachments": [f"Unknown: {unknown}"]}
        )
    room_platform = require_platform(session, data["roomOriginalPlatform"])
    room = find_room(session, room_platform.id, data["roomId"])
    if room is None:
        raise NotFound(f"unknown room {global_id(room_platform.name, data['roomId'])}")
    sender = find_user(session, caller.id, data["senderId"])
    if sender is None:
        raise NotFound(f"unknown sender {global_id(caller.name, data['senderId'])}")
    if not room.is_public and all(m.user_id != sender.id for m in room.members):
        raise Forbidden(f"sender {sender.global_id} is not a member of room {room.global_id}")
    return room, sender


def accept_message(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Store a message and queue it, rendered per receiver, for every member platform."""
    room, sender = resolve_message(session, caller, data)
    message = Message(
        room_id=room.id,
        sender_id=sender.id,
        text=data["text"],
        attachments=[],
        client_message_id=data.get("clientMessageId"),
    )
    session.add(message)
    session.flush()
    receivers = message_receivers(session, room, caller.id)
    for receiver in receivers:
        outbox.enqueue(
            session,
            receiver.id,
            EventKind.MESSAGE,
            [message_payload(message, room, sender, receiver)],
            message_id=message.id,
        )
    answer = {
        "status": 202,
        "message": f"message accepted for {len(receivers)} platform(s)",
        "id": message.id,
        "receivers": len(receivers),
    }
    return answer, 202
