"""Direct messages: no storage, no retries; only to platforms on a live WebSocket right now."""

from __future__ import annotations

import uuid
from typing import Any

from hub.ingest import resolve_message
from hub.message_routing import MessageView, message_payload, message_receivers
from hub.models import Platform, utcnow

Answer = tuple[dict[str, Any], int]


def send(hub: Any, caller: Platform, data: dict[str, Any]) -> Answer:
    """Push a message to the receivers connected to this hub process, and say how many."""
    with hub.db.read() as session:
        room, sender = resolve_message(session, caller, data)
        receivers = message_receivers(session, room, caller.id)
    message = MessageView(f"direct_{uuid.uuid4().hex}", data["text"], utcnow())
    frames = [
        (
            receiver.id,
            {
                "seq": None,
                "event": "message",
                "direct": True,
                "data": message_payload(message, room, sender, receiver),
            },
        )
        for receiver in receivers
        if hub.sockets.is_live(receiver.id)
    ]
    reached = sum(1 for platform_id, frame in frames if hub.sockets.send_direct(platform_id, frame))
    return {
        "status": 202,
        "message": f"direct message reached {reached} of {len(receivers)} platform(s); not stored",
        "id": message.id,
        "receivers": len(receivers),
        "reached": reached,
        "stored": False,
    }, 202
