"""Queue many messages' events at once, straight into a hub's database, with the hub's code.

The only place where the benchmarks import the hub's internals (``hub.db``, ``hub.ingest``,
``hub.routing``, ``hub.outbox``, ``hub.models``): when those modules move, this is the one
function to update. ``bench_delivery.py`` falls back to ``POST /message`` if it fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import Sent, log


def bulk_queue(
    hub_root: Path,
    db_url: str,
    items: list[Sent],
    *,
    room: int,
    receivers: list[str],
    label: str,
    per_transaction: int = 2000,
) -> float:
    """Save messages from A's user 1 into ``room`` and queue their events for ``receivers``,
    with the code of the hub at ``hub_root`` on its database ``db_url`` (routing, outbox),
    ``per_transaction`` messages a transaction: what POST /message stores, without HTTP and
    per-call overhead. Marks each item accepted (status 202, its message id); returns the
    seconds it took. The hub is not woken (it sees the events on its next poll or /ping)."""
    if str(hub_root) not in sys.path:
        sys.path.insert(0, str(hub_root))
    from hub.db import Database
    from hub.ingest.messages import store_message
    from hub.models import EventKind
    from hub.outbox.enqueue import enqueue
    from hub.routing.messages import load_room, load_sender, message_payload
    from hub.routing.receivers import message_receivers

    db = Database(db_url)
    started = last = time.monotonic()
    try:
        for start in range(0, len(items), per_transaction):
            chunk = items[start : start + per_transaction]
            with db.write() as session:
                room_view = load_room(session, "A", room)
                origin_id = room_view.platform_id
                sender = load_sender(session, origin_id, "A", 1)
                targets = [
                    r
                    for r in message_receivers(
                        session, room_view.is_public, room_view.member_platforms, origin_id
                    )
                    if r.name in receivers
                ]
                connection = session.connection()
                messages = [
                    store_message(connection, room_view, sender, item.text) for item in chunk
                ]
                for receiver in targets:
                    payloads = [message_payload(m, room_view, sender, receiver) for m in messages]
                    enqueue(session, receiver.id, EventKind.MESSAGE, payloads)
            now = time.time()
            for item, message in zip(chunk, messages, strict=True):
                item.sent = item.answered = now
                item.status, item.message_id = 202, message.id
            if time.monotonic() - last > 2:
                log(f"{label}: {start + len(chunk)}/{len(items)} queued in bulk")
                last = time.monotonic()
    finally:
        db.dispose()
    return time.monotonic() - started
