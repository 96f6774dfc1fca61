"""One long poll: acknowledge what the platform has, then hand out what follows or wait for it.

Items are ``{"message_id": seq, "type": kind, ...payload}``, Tryton's bus format; ``type`` is
the event's kind there, so a room's own ``type`` moves to ``roomType``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hub.models import Platform
from hub.outbox import leases, outcomes
from hub.outbox.reader import QueuedEvent
from hub.wakeup.local import RECHECK_SECONDS


def item(event: QueuedEvent) -> dict[str, Any]:
    """One event as a bus item."""
    payload = json.loads(event.payload)
    if "type" in payload:
        payload["roomType"] = payload.pop("type")
    return {"message_id": event.seq, "type": event.kind, **payload}


def poll(hub: Any, platform: Platform, last: int | None, wait: float | None) -> dict[str, Any]:
    """Acknowledge through ``last``, then answer what follows it, waiting up to ``wait``
    seconds (at most, and by default, ``HUB_POLL_TIMEOUT``) for the next event."""
    with hub.db.write() as session:
        if last is not None:
            outcomes.ack_through_each(session, {platform.id: last})
        leases.mark_up(session, platform.id)
    limit = hub.config["HUB_POLL_TIMEOUT"]
    deadline = time.monotonic() + (limit if wait is None else min(wait, limit))
    while True:
        seen = hub.notifier.version(platform.id)
        events = hub.reader.read(platform.id, last or 0, hub.config["HUB_DELIVERY_BATCH"])
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            break
        hub.notifier.wait(platform.id, seen, min(remaining, RECHECK_SECONDS))
    return {
        "messages": [item(e) for e in events],
        "last_message": events[-1].seq if events else last,
    }
