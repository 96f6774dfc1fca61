"""What routing a message needs (room, members, sender, receivers), read as plain rows.

``POST /message`` is the hot path: every message reads its room, the room's members, its
sender and the platforms it goes to. These are a handful of Core queries returning small frozen
views, several times cheaper than loading ORM objects with their relationships, and the payload
each receiver gets is rendered from the views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hub.errors import NotFound
from hub.ids import global_id, local_id_key, local_id_value
from hub.models import Platform, Room, RoomMember, User
from hub.outbox import lock_directory

_PLATFORMS = Platform.__table__
_ROOMS = Room.__table__
_USERS = User.__table__
_MEMBERS = RoomMember.__table__


@dataclass(frozen=True)
class MemberView:
    user_id: int
    platform_id: int
    local_value: int | str
    local_key: str  # the local id as stored (text)
    name: str


@dataclass(frozen=True)
class ReceiverView:
    id: int
    name: str
    wants_recipients: bool


@dataclass(frozen=True)
class RoomView:
    id: int
    platform_id: int
    platform_name: str
    local_value: int | str
    is_public: bool
    members: tuple[MemberView, ...]  # by user id
    # The enabled platforms among the room's origin and its members' platforms, by id.
    member_platforms: tuple[ReceiverView, ...]

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


# Built once, executed with parameters: building a statement and its cache key cost more
# than running it on this path.
_MEMBER_PLATFORMS = _PLATFORMS.alias("member_platforms")
# The room with its origin platform, one row per member (LEFT JOINs: a room may have none).
_ROOM_WITH_MEMBERS = (
    select(
        _ROOMS.c.id,
        _ROOMS.c.platform_id,
        _ROOMS.c.local_id,
        _ROOMS.c.local_id_is_int,
        _ROOMS.c.type,
        _PLATFORMS.c.name,
        _PLATFORMS.c.enabled,
        _PLATFORMS.c.wants_recipients,
        _USERS.c.id.label("member_id"),
        _USERS.c.platform_id.label("member_platform_id"),
        _USERS.c.local_id.label("member_local_id"),
        _USERS.c.local_id_is_int.label("member_local_id_is_int"),
        _USERS.c.name.label("member_name"),
        _MEMBER_PLATFORMS.c.name.label("member_platform_name"),
        _MEMBER_PLATFORMS.c.enabled.label("member_platform_enabled"),
        _MEMBER_PLATFORMS.c.wants_recipients.label("member_platform_wants_recipients"),
    )
    .join_from(_ROOMS, _PLATFORMS, _ROOMS.c.platform_id == _PLATFORMS.c.id)
    .outerjoin(_MEMBERS, _MEMBERS.c.room_id == _ROOMS.c.id)
    .outerjoin(_USERS, _MEMBERS.c.user_id == _USERS.c.id)
    .outerjoin(_MEMBER_PLATFORMS, _USERS.c.platform_id == _MEMBER_PLATFORMS.c.id)
    .where(_PLATFORMS.c.name_key == bindparam("name_key"), _ROOMS.c.local_id == bindparam("local"))
    .order_by(_USERS.c.id)
)
_PLATFORM_NAME = select(_PLATFORMS.c.name).where(_PLATFORMS.c.name_key == bindparam("name_key"))
_USER = select(_USERS.c.id, _USERS.c.local_id, _USERS.c.local_id_is_int, _USERS.c.name).where(
    _USERS.c.platform_id == bindparam("platform_id"), _USERS.c.local_id == bindparam("local")
)
_ENABLED_BUT = (
    select(_PLATFORMS.c.id, _PLATFORMS.c.name, _PLATFORMS.c.wants_recipients)
    .where(_PLATFORMS.c.enabled.is_(True), _PLATFORMS.c.id != bindparam("excluded"))
    .order_by(_PLATFORMS.c.id)
)


def _connection(db: Session | Connection) -> Connection:
    return db if isinstance(db, Connection) else db.connection()


def load_room(db: Session | Connection, platform_name: str, local_id: int | str) -> RoomView:
    """Read a room, its members and their platforms; 404 naming the unknown platform or room.

    Takes the session, or its connection (a caller making several reads passes it once)."""
    connection = _connection(db)
    lock_directory(connection)  # before reading who exists: see outbox.lock_directory
    text, _ = local_id_key(local_id)
    name_key = platform_name.lower()
    rows = connection.execute(_ROOM_WITH_MEMBERS, {"name_key": name_key, "local": text}).all()
    if not rows:
        known = connection.execute(_PLATFORM_NAME, {"name_key": name_key}).scalar()
        if known is None:
            raise NotFound(f"unknown platform {platform_name!r}")
        raise NotFound(f"unknown room {global_id(known, local_id)}")
    room = rows[0]
    members = [r for r in rows if r.member_id is not None]
    platforms: dict[int, ReceiverView] = {}
    if room.enabled:
        origin = ReceiverView(room.platform_id, room.name, room.wants_recipients)
        platforms[room.platform_id] = origin
    for m in members:
        if m.member_platform_enabled:
            platforms[m.member_platform_id] = ReceiverView(
                m.member_platform_id, m.member_platform_name, m.member_platform_wants_recipients
            )
    return RoomView(
        id=room.id,
        platform_id=room.platform_id,
        platform_name=room.name,
        local_value=local_id_value(room.local_id, room.local_id_is_int),
        is_public=room.type == "public",
        members=tuple(
            MemberView(
                m.member_id,
                m.member_platform_id,
                local_id_value(m.member_local_id, m.member_local_id_is_int),
                m.member_local_id,
                m.member_name,
            )
            for m in members
        ),
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


def message_receivers(
    db: Session | Connection, room: RoomView, sender_platform_id: int
) -> list[ReceiverView]:
    """Platforms a message in this room goes to: members' (all, if public), minus the sender's.

    Enabled platforms only, in registration order."""
    if not room.is_public:
        return [p for p in room.member_platforms if p.id != sender_platform_id]
    rows = _connection(db).execute(_ENABLED_BUT, {"excluded": sender_platform_id})
    return [ReceiverView(r.id, r.name, r.wants_recipients) for r in rows]


def message_payload(
    message: MessageView, room: RoomView, sender: SenderView, receiver: ReceiverView
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
