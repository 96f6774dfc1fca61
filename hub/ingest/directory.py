"""Users and rooms: find and upsert them by (platform, local id)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import BadRequest
from hub.ids import global_id, local_id_key
from hub.models import Platform, Room, RoomMember, User


def platform_by_name(session: Session, name: str) -> Platform | None:
    """Find a platform by name, case-insensitively."""
    return session.execute(
        select(Platform).where(Platform.name_key == name.lower())
    ).scalar_one_or_none()


def find_user(session: Session, platform_id: int, local_id: int | str) -> User | None:
    text, _ = local_id_key(local_id)
    return session.execute(
        select(User).where(User.platform_id == platform_id, User.local_id == text)
    ).scalar_one_or_none()


def find_room(session: Session, platform_id: int, local_id: int | str) -> Room | None:
    text, _ = local_id_key(local_id)
    return session.execute(
        select(Room).where(Room.platform_id == platform_id, Room.local_id == text)
    ).scalar_one_or_none()


@dataclass
class Upserted:
    """What an upsert did: the row, and whether it was created or changed at all."""

    row: User | Room
    created: bool
    changed: bool


def upsert_user(session: Session, platform: Platform, local_id: int | str, name: str) -> Upserted:
    """Create or rename a platform's user."""
    text, is_int = local_id_key(local_id)
    user = find_user(session, platform.id, local_id)
    if user is None:
        user = User(platform=platform, local_id=text, local_id_is_int=is_int, name=name)
        session.add(user)
        session.flush()
        return Upserted(user, created=True, changed=True)
    changed = user.name != name or user.local_id_is_int != is_int
    user.name, user.local_id_is_int = name, is_int
    return Upserted(user, created=False, changed=changed)


def resolve_members(session: Session, groups: Iterable[dict[str, list[int | str]]]) -> list[User]:
    """Turn ``[{"Platform": [local ids]}, ...]`` into users; 400 naming what is unknown."""
    members: dict[int, User] = {}
    unknown_platforms: list[str] = []
    unknown_users: list[str] = []
    for group in groups:
        for name, local_ids in group.items():
            platform = platform_by_name(session, name)
            if platform is None:
                unknown_platforms.append(name)
                continue
            for local_id in local_ids:
                user = find_user(session, platform.id, local_id)
                if user is None:
                    unknown_users.append(global_id(platform.name, local_id))
                else:
                    members[user.id] = user
    problems = []
    if unknown_platforms:
        problems.append("unknown platforms: " + ", ".join(unknown_platforms))
    if unknown_users:
        problems.append("unknown users: " + ", ".join(unknown_users))
    if problems:
        raise BadRequest("; ".join(problems), {"users": problems})
    return list(members.values())


def upsert_room(
    session: Session,
    platform: Platform,
    local_id: int | str,
    name: str,
    room_type: str,
    members: list[User],
) -> tuple[Upserted, set[int]]:
    """Create or update a room; return what happened and the platforms that lost all members."""
    text, is_int = local_id_key(local_id)
    room = find_room(session, platform.id, local_id)
    created = room is None
    if room is None:
        room = Room(
            platform=platform, local_id=text, local_id_is_int=is_int, name=name, type=room_type
        )
        session.add(room)
        before: set[int] = set()
        before_platforms: set[int] = set()
    else:
        before = {m.user_id for m in room.members}
        before_platforms = {m.user.platform_id for m in room.members}
    after = {u.id for u in members}
    changed = (
        created
        or before != after
        or (room.name, room.type, room.local_id_is_int) != (name, room_type, is_int)
    )
    room.name, room.type, room.local_id_is_int = name, room_type, is_int
    if before != after:
        room.members = [m for m in room.members if m.user_id in after] + [
            RoomMember(user=u) for u in members if u.id not in before
        ]
    session.flush()
    left = before_platforms - {u.platform_id for u in members}
    return Upserted(room, created=created, changed=changed), left
