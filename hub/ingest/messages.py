"""``POST /message``: check, store and queue a message for every platform of its room."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert
from sqlalchemy.orm import Session

from hub.db.lean import LeanStatement, fetch, stored_time
from hub.errors import BadRequest, Forbidden, NotFound
from hub.ids import global_id
from hub.ingest.checks import Answer, speaks_for_itself
from hub.models import EventKind, Message, Platform, utcnow
from hub.outbox.enqueue import enqueue_each, reserve_one_each
from hub.routing.messages import (
    MessageView,
    RoomView,
    SenderView,
    load_room,
    load_sender,
    message_payload,
)
from hub.routing.receivers import message_receivers

_MESSAGES = Message.__table__
# No attachments yet (unknown ones are refused): the JSON column gets the empty list's text.
_INSERT_MESSAGE = LeanStatement(
    insert(_MESSAGES)
    .values(
        room_id=bindparam("room_id"),
        sender_id=bindparam("sender_id"),
        text=bindparam("text"),
        attachments=bindparam("attachments"),
        client_message_id=bindparam("client_message_id"),
        sent_at=bindparam("sent_at"),
    )
    .returning(_MESSAGES.c.id)
)


def resolve_message(
    session: Session, caller: Platform, data: dict[str, Any]
) -> tuple[RoomView, SenderView]:
    """Check a message's room and sender; return them, or raise the error that names the fault."""
    speaks_for_itself(caller, data.get("senderPlatform"))
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
    values = {
        "room_id": room.id,
        "sender_id": sender.id,
        "text": text,
        "attachments": "[]",
        "client_message_id": client_message_id,
        "sent_at": stored_time(connection.dialect, sent_at),
    }
    message_id = fetch(connection, _INSERT_MESSAGE, values)[0][0]
    return MessageView(message_id, text, sent_at)


def accept_message(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Store a message and queue it, rendered per receiver, for every member platform."""
    room, sender = resolve_message(session, caller, data)
    connection = session.connection()
    receivers = message_receivers(connection, room.is_public, room.member_platforms, caller.id)
    # Seqs before the message's id: on PostgreSQL the receivers' rows stay locked from here,
    # so of two messages to the same platforms the one with the smaller id comes first in
    # every stream (SQLite, one writer at a time, gives that anyway).
    seqs = reserve_one_each(connection, [r.id for r in receivers])
    message = store_message(connection, room, sender, data["text"], data.get("clientMessageId"))
    enqueue_each(
        session,
        EventKind.MESSAGE,
        [(r.id, message_payload(message, room, sender, r)) for r in receivers],
        message_id=message.id,
        seqs=seqs,
    )
    answer = {
        "status": 202,
        "message": f"message accepted for {len(receivers)} platform(s)",
        "id": message.id,
        "receivers": len(receivers),
    }
    return answer, 202
