"""The WebSocket transport: the platform dials ``/ws``; the hub pushes its stream as frames.

``view`` serves the route, ``session`` serves one connected platform (push in seq order, take
acks and calls), ``connections`` holds this process's live sockets, ``keeper`` batches the
sessions' acks and renews their stream leases, ``frames`` spells the frames.
"""

from adapters.websocket.view import serve

__all__ = ["serve"]
