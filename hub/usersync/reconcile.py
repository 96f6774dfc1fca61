"""Reconcile a platform's ``GET users`` answer with the directory (onboarding and sync).

``reconcile_users`` registers new users and renames changed ones, forwarding each change to the
other platforms exactly as ``POST /user`` does; users missing from the answer are reported as
vanished and, only when asked, deleted (with their room memberships, see ``_delete_vanished``).
With ``apply=False`` it computes the same diff and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ids import global_id, local_id_key
from hub.ingest.directory import upsert_user
from hub.ingest.users import forward_user
from hub.models import EventKind, Platform, Room, RoomMember, User, utcnow
from hub.outbox.enqueue import enqueue_each
from hub.routing.payloads import room_payload
from hub.routing.receivers import member_platform_ids, room_receivers
from hub.schemas.calls import UserIn

SHOWN = 200  # characters of an invalid entry kept in the report


@dataclass(frozen=True)
class UserChange:
    """One user the reconcile creates, renames or finds vanished."""

    global_id: str
    name: str
    old_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = {"globalId": self.global_id, "name": self.name}
        return answer if self.old_name is None else {**answer, "oldName": self.old_name}


@dataclass
class UserDiff:
    """What a platform's user list changes in the directory."""

    created: list[UserChange] = field(default_factory=list)
    renamed: list[UserChange] = field(default_factory=list)
    vanished: list[UserChange] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def read_entries(entries: list[Any]) -> tuple[dict[str, dict[str, Any]], set[str], list[str]]:
    """Validate a ``GET users`` list; return valid users by id key, every id named, and errors."""
    schema = UserIn()
    valid: dict[str, dict[str, Any]] = {}
    named: set[str] = set()
    invalid: list[str] = []
    for entry in entries:
        shown = repr(entry)[:SHOWN]
        if not isinstance(entry, dict):
            invalid.append(f"{shown}: not an object")
            continue
        raw_id = entry.get("id")
        if isinstance(raw_id, int | str) and not isinstance(raw_id, bool):
            # A readable id protects its user from being taken for vanished, even if the
            # rest of the entry is wrong.
            named.add(local_id_key(raw_id)[0])
        try:
            data = schema.load(entry)
        except ValidationError as exc:
            invalid.append(f"{shown}: {exc.messages}")
            continue
        key = local_id_key(data["id"])[0]
        if key in valid:
            invalid.append(f"{shown}: duplicate id, the first entry is kept")
            continue
        valid[key] = data
    return valid, named, invalid


def reconcile_users(
    session: Session,
    platform: Platform,
    entries: list[Any],
    *,
    apply: bool = True,
    delete_vanished: bool = False,
) -> UserDiff:
    """Diff a platform's user list against the directory and, if ``apply``, make it so."""
    valid, named, invalid = read_entries(entries)
    diff = UserDiff(invalid=invalid)
    known = {
        user.local_id: user
        for user in session.execute(
            select(User).where(User.platform_id == platform.id).order_by(User.id)
        ).scalars()
    }
    for key, data in valid.items():
        user = known.get(key)
        is_int = local_id_key(data["id"])[1]
        if user is None:
            diff.created.append(UserChange(global_id(platform.name, key), data["name"]))
        elif (user.name, user.local_id_is_int) != (data["name"], is_int):
            diff.renamed.append(UserChange(user.global_id, data["name"], user.name))
        else:
            continue
        if apply:
            forward_user(session, upsert_user(session, platform, data["id"], data["name"]).row)
    gone = [user for key, user in known.items() if key not in named]
    diff.vanished = [UserChange(user.global_id, user.name) for user in gone]
    if apply:
        if delete_vanished and gone:
            _delete_vanished(session, platform.id, gone)
        platform.users_synced_at = utcnow()
    return diff


def _delete_vanished(session: Session, source: int, gone: list[User]) -> None:
    """Delete users and their memberships; send each room they left to whoever knows it.

    A room update goes to every platform the room concerns (``hub.routing.receivers``), those
    that lost their last member included: the change comes from the sync, not from a room call.
    Only a room of the platform whose users vanished is not sent back to it: it knows.
    """
    ids = {user.id for user in gone}
    rooms = (
        session.execute(
            select(Room)
            .join(RoomMember, RoomMember.room_id == Room.id)
            .where(RoomMember.user_id.in_(ids))
            .distinct()
            .order_by(Room.id)
        )
        .scalars()
        .all()
    )
    for room in rooms:
        before = member_platform_ids(room)
        room.members = [m for m in room.members if m.user_id not in ids]
        session.flush()
        left = before - member_platform_ids(room)
        payload = room_payload(room)
        own = room.platform_id == source
        receivers = room_receivers(
            session, room, source=room.platform_id if own else None, extra=left
        )
        enqueue_each(session, EventKind.ROOM, [(r.id, payload) for r in receivers])
    for user in gone:
        session.delete(user)
    session.flush()
