"""Direct messages: no storage, no retries; only to platforms on a live WebSocket right now.

A receiver's socket may be open on another process of the hub (another gunicorn worker, or on
PostgreSQL another machine): the frame is handed to that process, found from the stream lease
the socket holds, through its wake socket inbox (SQLite) or its NOTIFY channel (PostgreSQL).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from hub.ingest.records import resolve_message
from hub.models import Platform, Transport, utcnow
from hub.routing.messages import MessageView, message_payload, message_receivers

Answer = tuple[dict[str, Any], int]


def send(hub: Any, caller: Platform, data: dict[str, Any]) -> Answer:
    """Push a message to the receivers connected to the hub right now, and say how many."""
    with hub.db.read() as session:
        room, sender = resolve_message(session, caller, data)
        receivers = message_receivers(session, room, caller.id)
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
        owners = _socket_owners(session, elsewhere) if hub.direct_relay is not None else {}
    reached = sum(
        1
        for pid, frame in frames.items()
        if pid not in elsewhere and hub.sockets.send_direct(pid, frame)
    )
    by_owner: dict[str, dict[int, dict[str, Any]]] = {}
    for pid, owner in owners.items():
        if not owner.startswith(hub.dispatcher.owner + "/"):  # this process's socket is gone
            by_owner.setdefault(owner, {})[pid] = frames[pid]
    for owner, relayed in by_owner.items():
        if hub.direct_relay.send_direct(owner, relayed):
            reached += len(relayed)
    return {
        "status": 202,
        "message": f"direct message reached {reached} of {len(receivers)} platform(s); not stored",
        "id": message.id,
        "receivers": len(receivers),
        "reached": reached,
        "stored": False,
    }, 202


def _socket_owners(session: Any, platform_ids: set[int]) -> dict[int, str]:
    """The owner of each of these platforms' streams that is a live WebSocket session."""
    if not platform_ids:
        return {}
    rows = session.execute(
        select(Platform.id, Platform.lease_owner).where(
            Platform.id.in_(platform_ids),
            Platform.transport == Transport.WEBSOCKET,
            Platform.lease_owner.contains("/ws-", autoescape=True),
            Platform.lease_until > utcnow(),
        )
    )
    return {pid: owner for pid, owner in rows}
