"""The one path for what platforms send: validate against the directory, save, fan out.

Each function runs inside the caller's write transaction, so a message and its outbox events
are committed together or not at all. Both the HTTP API and (later) WebSocket calls use these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from hub.db.plain_sql import PlainStatement, fetch, stored_time
from hub.errors import BadRequest, Forbidden, NotFound
from hub.ids import global_id
from hub.ingest.directory import (
    resolve_members,
    upsert_room,
    upsert_user,
)
from hub.models import EventKind, Message, Platform, utcnow
from hub.outbox import streams as outbox
from hub.routing.messages import (
    MessageView,
    RoomView,
    SenderView,
    load_room,
    load_sender,
    message_payload,
    message_receivers,
)
from hub.routing.receivers import (
    active_platforms,
    room_payload,
    room_receivers,
    user_payload,
)

Answer = tuple[dict[str, Any], int]
# On the plain cursor (hub/plain_sql.py): every message takes it. No attachments yet (unknown
# ones are refused): the JSON column gets the empty list's text.
_INSERT_MESSAGE = PlainStatement(
    f"INSERT INTO {Message.__tablename__}"
    " (room_id, sender_id, text, attachments, client_message_id, sent_at)"
    " VALUES (?, ?, ?, '[]', ?, ?) RETURNING id"
)


def _speaks_for_itself(caller: Platform, claimed: str | None) -> None:
    if claimed is not None and claimed.lower() != caller.name_key:
        raise Forbidden(f"{caller.name} cannot speak for users of {claimed}")


def _attached(session: Session, caller: Platform) -> Platform:
    """The caller as a row of this session (users and rooms are created under it)."""
    platform = session.get(Platform, caller.id)
    if platform is None:
        raise NotFound(f"unknown platform {caller.name!r}")
    return platform


def save_user(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Create or update a user of the calling platform and forward it to every other one."""
    _speaks_for_itself(caller, data.get("platform"))
    result = upsert_user(session, _attached(session, caller), data["id"], data["name"])
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
    platform = _attached(session, caller)
    result, left = upsert_room(session, platform, data["id"], data["name"], data["type"], members)
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


def resolve_message(
    session: Session, caller: Platform, data: dict[str, Any]
) -> tuple[RoomView, SenderView]:
    """Check a message's room and sender; return them, or raise the error that names the fault."""
    _speaks_for_itself(caller, data.get("senderPlatform"))
    if data.get("attachments"):
        unknown = ", ".join(map(str, data["attachments"]))
        raise BadRequest(
            f"unknown attachments: {unknown}", {"attachments": [f"Unknown: {unknown}"]}
        )
    connection = session.connection()
    room = load_room(connection, data["roomOriginalPlatform"], data["roomId"])
    sender = load_sender(connection, caller.id, caller.name, data["senderId"], room)
    if sender is None:
        raise NotFound(f"unknown sender {global_id(caller.name, data['senderId'])}")
    if not room.is_public and not room.has_member(sender.id):
        raise Forbidden(f"sender {sender.global_id} is not a member of room {room.global_id}")
    return room, sender


def store_message(
    connection: Connection,
    room: RoomView,
    sender: SenderView,
    text: str,
    client_message_id: str | None = None,
) -> MessageView:
    """Save a message's row; return it as the payloads render it."""
    sent_at = utcnow()
    stored = stored_time(connection, sent_at)
    params = (room.id, sender.id, text, client_message_id, stored)
    message_id = fetch(connection, _INSERT_MESSAGE, params)[0][0]
    return MessageView(message_id, text, sent_at)


def accept_message(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Store a message and queue it, rendered per receiver, for every member platform."""
    room, sender = resolve_message(session, caller, data)
    connection = session.connection()
    receivers = message_receivers(connection, room, caller.id)
    # Seqs before the message's id: on PostgreSQL the receivers' rows stay locked from here,
    # so of two messages to the same platforms the one with the smaller id comes first in
    # every stream (SQLite, one writer at a time, gives that anyway).
    seqs = outbox.reserve_one_each(connection, [r.id for r in receivers])
    message = store_message(connection, room, sender, data["text"], data.get("clientMessageId"))
    outbox.enqueue_each(
        session,
        EventKind.MESSAGE,
        [(r.id, message_payload(message, room, sender, r)) for r in receivers],
        message_id=message.id,
        connection=connection,
        seqs=seqs,
    )
    answer = {
        "status": 202,
        "message": f"message accepted for {len(receivers)} platform(s)",
        "id": message.id,
        "receivers": len(receivers),
    }
    return answer, 202
