"""The one receivers rule: who is told of a user, a room, a message or a notification.

A user concerns every platform. A room concerns every platform if it is public, else its own
platform and the platforms of its members (and, for an update, those that just lost their last
member). News goes to every enabled platform it concerns except the one it came from: a user's
own platform, the room's platform for a room update, the sender's for a message; a change the
hub makes itself (the user sync deleting users) goes to all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hub.db.locks import lock_directory
from hub.models import Platform, Room

_PLATFORMS = Platform.__table__
_ENABLED = (
    select(
        _PLATFORMS.c.id,
        _PLATFORMS.c.name,
        _PLATFORMS.c.wants_recipients,
        _PLATFORMS.c.takes_notifications,
    )
    .where(_PLATFORMS.c.enabled.is_(True), _PLATFORMS.c.id != bindparam("excluded"))
    .order_by(_PLATFORMS.c.id)
)


@dataclass(frozen=True)
class Receiver:
    """A platform that news goes to, as its payload needs it."""

    id: int
    name: str
    wants_recipients: bool
    takes_notifications: bool


def concerns(is_public: bool, concerned: Iterable[int], platform_id: int) -> bool:
    """Whether a room (public, or with these platforms concerned) concerns a platform."""
    return is_public or platform_id in concerned


def enabled_platforms(
    db: Session | Connection, exclude: int | None = None, *, locked: bool = False
) -> list[Receiver]:
    """Every enabled platform but ``exclude``, in registration order. ``locked``: the caller
    already holds the directory lock (``load_room`` takes it)."""
    if not locked:
        # Before reading who exists: a registration in flight either sees what this
        # transaction writes, or is seen by it (see hub.db.locks).
        lock_directory(db)
    rows = db.execute(_ENABLED, {"excluded": -1 if exclude is None else exclude})
    return [Receiver(*row) for row in rows]


def user_receivers(db: Session | Connection, user_platform_id: int) -> list[Receiver]:
    """Platforms told about a user: every enabled one but its own."""
    return enabled_platforms(db, exclude=user_platform_id)


def member_platform_ids(room: Room) -> set[int]:
    """The platforms of a room's members."""
    return {m.user.platform_id for m in room.members}


def room_receivers(
    session: Session, room: Room, source: int | None, extra: Iterable[int] = ()
) -> list[Receiver]:
    """Platforms told about a change of ``room`` that came from platform ``source`` (None: from
    the hub itself); ``extra``: platforms concerned although no member is left on them (they
    just lost theirs)."""
    concerned = {room.platform_id, *member_platform_ids(room), *extra}
    return [
        p
        for p in enabled_platforms(session, exclude=source)
        if concerns(room.is_public, concerned, p.id)
    ]


def message_receivers(
    db: Session | Connection,
    is_public: bool,
    member_platforms: Iterable[Receiver],
    sender_platform_id: int,
) -> list[Receiver]:
    """Platforms a message goes to: the room's concerned platforms but the sender's.

    ``member_platforms``: the enabled platforms among the room's own and its members', which
    are all a private room concerns (no query then). The caller read them with ``load_room``,
    which took the directory lock."""
    candidates = enabled_platforms(db, locked=True) if is_public else member_platforms
    return [p for p in candidates if p.id != sender_platform_id]
