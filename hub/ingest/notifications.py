"""Notifications: who is addressed ("$all", platform names, user global ids) and what they get."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from hub.errors import NotFound
from hub.ids import parse_global_id
from hub.ingest.checks import Answer
from hub.ingest.directory import find_user, platform_by_name
from hub.models import EventKind, Platform, utcnow
from hub.outbox.enqueue import enqueue_each
from hub.routing.receivers import Receiver, enabled_platforms


def _addressees(
    session: Session, to: Any, sender_id: int | None
) -> dict[int, tuple[Platform | Receiver, list[int | str] | None]]:
    """Map each addressed platform to the local ids of its addressed users (None: all of it)."""
    if to == "$all":
        return {p.id: (p, None) for p in enabled_platforms(session, exclude=sender_id)}
    found: dict[int, tuple[Platform | Receiver, list[int | str] | None]] = {}
    users: dict[int, list[int | str]] = defaultdict(list)
    unknown: list[str] = []
    for address in to:
        name, _, local = address.partition(":")
        platform = platform_by_name(session, name)
        if platform is None or not platform.enabled:
            unknown.append(address)
        elif not local:
            found[platform.id] = (platform, None)
        else:
            user = find_user(session, platform.id, parse_global_id(address)[1])
            if user is None:
                unknown.append(address)
            else:
                users[platform.id].append(user.local_value)
                found.setdefault(platform.id, (platform, users[platform.id]))
    if unknown:
        raise NotFound("unknown addressees: " + ", ".join(unknown))
    return found


def notify(session: Session, sender: Platform | None, data: dict[str, Any]) -> Answer:
    """Queue a notification event for every addressed platform that takes notifications."""
    notification_id = f"ntf_{uuid.uuid4().hex}"
    addressed = _addressees(session, data["to"], sender.id if sender else None)
    events = []
    sent_at = utcnow().isoformat(timespec="milliseconds") + "Z"
    # In platform id order: PostgreSQL's row locks on the streams are taken in one order.
    for platform_id in sorted(addressed):
        platform, recipients = addressed[platform_id]
        if not platform.takes_notifications:
            continue
        payload: dict[str, Any] = {
            "id": notification_id,
            "title": data["title"],
            "body": data["body"],
            "priority": data["priority"],
            "from": sender.name if sender else None,
            "sentAt": sent_at,
        }
        if recipients is not None:
            payload["recipients"] = recipients
        events.append((platform_id, payload))
    enqueue_each(session, EventKind.NOTIFICATION, events)  # one INSERT for them all
    queued = len(events)
    return {
        "status": 202,
        "message": f"notification queued for {queued} platform(s)",
        "id": notification_id,
        "receivers": queued,
    }, 202
