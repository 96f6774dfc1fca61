"""What routing a message needs (room, members, sender), read as small frozen views.

``POST /message`` is the hot path: every message reads its room, the room's members, its
sender and the platforms it goes to. A handful of Core queries returning frozen views is
several times cheaper than loading ORM objects with their relationships, and the payload each
receiver gets is rendered from the views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hub.db.lean import LeanStatement, fetch
from hub.db.locks import lock_directory
from hub.errors import NotFound
from hub.ids import global_id, local_id_key, local_id_value
from hub.models import Platform, Room, RoomMember, User
from hub.routing.receivers import Receiver

_PLATFORMS = Platform.__table__
_USERS = User.__table__


@dataclass(frozen=True)
class MemberView:
    user_id: int
    platform_id: int
    local_value: int | str
    local_key: str  # the local id as stored (text)
    name: str


@dataclass(frozen=True)
class RoomView:
    id: int
    platform_id: int
    platform_name: str
    local_value: int | str
    is_public: bool
    members: tuple[MemberView, ...]  # by user id
    # The enabled platforms among the room's origin and its members' platforms, by id.
    member_platforms: tuple[Receiver, ...]

    @property
    def global_id(self) -> str:
        return global_id(self.platform_name, self.local_value)

    def has_member(self, user_id: int) -> bool:
        return any(m.user_id == user_id for m in self.members)

    def member_of(self, platform_id: int, local_key: str) -> MemberView | None:
        """The member with this platform's local id (as stored), if any."""
        for m in self.members:
            if m.platform_id == platform_id and m.local_key == local_key:
                return m
        return None


@dataclass(frozen=True)
class SenderView:
    id: int
    platform_name: str
    local_value: int | str
    name: str

    @property
    def global_id(self) -> str:
        return global_id(self.platform_name, self.local_value)


@dataclass(frozen=True)
class MessageView:
    id: int | str
    text: str
    sent_at: datetime
    attachments: tuple[Any, ...] = ()


def _room_with_members() -> LeanStatement:
    """The room with its origin platform, one row per member (LEFT JOINs: a room may have
    none), members in user id order."""
    r, origin, m = Room.__table__, _PLATFORMS, RoomMember.__table__
    u, mp = _USERS.alias("u"), _PLATFORMS.alias("mp")
    columns = (
        r.c.id, r.c.platform_id, r.c.local_id, r.c.local_id_is_int, r.c.type,
        origin.c.name, origin.c.enabled, origin.c.wants_recipients, origin.c.takes_notifications,
        u.c.id, u.c.platform_id, u.c.local_id, u.c.local_id_is_int, u.c.name,
        mp.c.name, mp.c.enabled, mp.c.wants_recipients, mp.c.takes_notifications,
    )  # fmt: skip
    return LeanStatement(
        select(*columns)
        .select_from(
            r.join(origin, r.c.platform_id == origin.c.id)
            .outerjoin(m, m.c.room_id == r.c.id)
            .outerjoin(u, m.c.user_id == u.c.id)
            .outerjoin(mp, u.c.platform_id == mp.c.id)
        )
        .where(origin.c.name_key == bindparam("name_key"), r.c.local_id == bindparam("local"))
        .order_by(u.c.id)
    )


# Built once, executed with parameters: building a statement cost more than running it here.
_ROOM_WITH_MEMBERS = _room_with_members()
_PLATFORM_NAME = select(_PLATFORMS.c.name).where(_PLATFORMS.c.name_key == bindparam("name_key"))
_USER = select(_USERS.c.id, _USERS.c.local_id, _USERS.c.local_id_is_int, _USERS.c.name).where(
    _USERS.c.platform_id == bindparam("platform_id"), _USERS.c.local_id == bindparam("local")
)


def _connection(db: Session | Connection) -> Connection:
    return db if isinstance(db, Connection) else db.connection()


def load_room(db: Session | Connection, platform_name: str, local_id: int | str) -> RoomView:
    """Read a room, its members and their platforms; 404 naming the unknown platform or room.

    Takes the directory lock first (see hub.db.locks)."""
    connection = _connection(db)
    lock_directory(connection)
    text, _ = local_id_key(local_id)
    name_key = platform_name.lower()
    rows = fetch(connection, _ROOM_WITH_MEMBERS, {"name_key": name_key, "local": text})
    if not rows:
        known = connection.execute(_PLATFORM_NAME, {"name_key": name_key}).scalar()
        if known is None:
            raise NotFound(f"unknown platform {platform_name!r}")
        raise NotFound(f"unknown room {global_id(known, local_id)}")
    room_id, origin_id, room_local, room_local_is_int, room_type = rows[0][:5]
    origin_name, origin_enabled, origin_wants, origin_takes = rows[0][5:9]
    platforms: dict[int, Receiver] = {}
    if origin_enabled:
        platforms[origin_id] = Receiver(
            origin_id, origin_name, bool(origin_wants), bool(origin_takes)
        )
    members = []
    for user_id, platform_id, local, local_is_int, name, p_name, p_on, p_wants, p_takes in (
        row[9:] for row in rows
    ):
        if user_id is None:  # a room without members
            continue
        members.append(
            MemberView(user_id, platform_id, local_id_value(local, local_is_int), local, name)
        )
        if p_on:
            platforms[platform_id] = Receiver(platform_id, p_name, bool(p_wants), bool(p_takes))
    return RoomView(
        id=room_id,
        platform_id=origin_id,
        platform_name=origin_name,
        local_value=local_id_value(room_local, room_local_is_int),
        is_public=room_type == "public",
        members=tuple(members),
        member_platforms=tuple(platforms[key] for key in sorted(platforms)),
    )


def load_sender(
    db: Session | Connection,
    platform_id: int,
    platform_name: str,
    local_id: int | str,
    room: RoomView | None = None,
) -> SenderView | None:
    """A platform's user by local id, or None: taken from ``room``'s members when it is one
    (a message's sender usually is: no query), else read."""
    text, _ = local_id_key(local_id)
    member = room.member_of(platform_id, text) if room is not None else None
    if member is not None:
        return SenderView(member.user_id, platform_name, member.local_value, member.name)
    row = _connection(db).execute(_USER, {"platform_id": platform_id, "local": text}).first()
    if row is None:
        return None
    return SenderView(
        row.id, platform_name, local_id_value(row.local_id, row.local_id_is_int), row.name
    )


def message_payload(
    message: MessageView, room: RoomView, sender: SenderView, receiver: Receiver
) -> dict[str, Any]:
    """Render a message for one receiver: its recipients in its own local ids."""
    payload: dict[str, Any] = {
        "id": message.id,
        "roomOriginalPlatform": room.platform_name,
        "roomId": room.local_value,
        "roomGlobalId": room.global_id,
        "senderId": sender.local_value,
        "senderPlatform": sender.platform_name,
        "senderGlobalId": sender.global_id,
        "senderName": sender.name,
        "text": message.text,
        "sentAt": message.sent_at.isoformat(timespec="milliseconds") + "Z",
        "attachments": list(message.attachments),
    }
    if receiver.wants_recipients:
        payload["recipients"] = [
            m.local_value for m in room.members if m.platform_id == receiver.id
        ]
    return payload
