"""Direct messages: no storage, no retries; only to platforms on a live WebSocket right now.

A receiver's socket may be open on another process of the hub (another gunicorn worker, or on
PostgreSQL another machine): the frame is handed to that process, found from the stream lease
the socket holds, through its wake socket inbox (SQLite) or its NOTIFY channel (PostgreSQL).
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.ingest.checks import Answer
from hub.ingest.messages import resolve_message
from hub.models import Platform, utcnow
from hub.outbox.leases import socket_owners
from hub.routing.messages import MessageView, message_payload
from hub.routing.receivers import message_receivers


def send(hub: Any, caller: Platform, data: dict[str, Any]) -> Answer:
    """Push a message to the receivers connected to the hub right now, and say how many."""
    with hub.db.read() as session:
        room, sender = resolve_message(session, caller, data)
        receivers = message_receivers(session, room.is_public, room.member_platforms, caller.id)
        message = MessageView(f"direct_{uuid.uuid4().hex}", data["text"], utcnow())
        frames = {
            receiver.id: {
                "seq": None,
                "event": "message",
                "direct": True,
                "data": message_payload(message, room, sender, receiver),
            }
            for receiver in receivers
        }
        elsewhere = {pid for pid in frames if not hub.sockets.is_live(pid)}
        owners = socket_owners(session, elsewhere) if hub.wakeup.relays else {}
    reached = sum(
        1
        for pid, frame in frames.items()
        if pid not in elsewhere and hub.sockets.send_direct(pid, frame)
    )
    by_owner: dict[str, dict[int, dict[str, Any]]] = {}
    for pid, owner in owners.items():
        if not owner.startswith(hub.owner + "/"):  # this process's socket is gone
            by_owner.setdefault(owner, {})[pid] = frames[pid]
    for owner, relayed in by_owner.items():
        if hub.wakeup.send_direct(owner, relayed):
            reached += len(relayed)
    return {
        "status": 202,
        "message": f"direct message reached {reached} of {len(receivers)} platform(s); not stored",
        "id": message.id,
        "receivers": len(receivers),
        "reached": reached,
        "stored": False,
    }, 202
