"""The WebSocket transport: the hub's /ws pushes each event as one frame; the platform acks."""

from __future__ import annotations

from typing import ClassVar

from adapters.base import Adapter, OutgoingEvent


class WebSocketAdapter(Adapter):
    transport = "websocket"
    pushes: ClassVar[bool] = False  # the platform dials in; hub.socket_stream serves it

    @staticmethod
    def frame(event: OutgoingEvent) -> str:
        """``{"seq", "event", "data"}``, the stored payload embedded as it is."""
        return f'{{"seq":{event.seq},"event":"{event.kind}","data":{event.payload}}}'
