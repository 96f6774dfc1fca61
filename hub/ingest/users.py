"""``POST /user``: save a platform's user and tell every other platform."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.ingest.checks import Answer, attached, saved, speaks_for_itself
from hub.ingest.directory import upsert_user
from hub.models import EventKind, Platform, User
from hub.outbox.enqueue import enqueue_each
from hub.routing.payloads import user_payload
from hub.routing.receivers import user_receivers


def save_user(session: Session, caller: Platform, data: dict[str, Any]) -> Answer:
    """Create or update a user of the calling platform and forward it to every other one."""
    speaks_for_itself(caller, data.get("platform"))
    result = upsert_user(session, attached(session, caller), data["id"], data["name"])
    if result.changed:
        forward_user(session, result.row)
    return saved("user", result.row.global_id, result.created, result.changed)


def forward_user(session: Session, user: User) -> None:
    """Queue a user event for every enabled platform but the user's own."""
    payload = user_payload(user)
    receivers = user_receivers(session, user.platform_id)
    enqueue_each(session, EventKind.USER, [(r.id, payload) for r in receivers])
