"""The long-poll transport: POST /bus hands out what follows the platform's last_message."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from adapters.base import Adapter, OutgoingEvent


class PollAdapter(Adapter):
    transport = "poll"
    pushes: ClassVar[bool] = False  # the platform asks; hub.api.realtime.bus answers

    @staticmethod
    def item(event: OutgoingEvent) -> dict[str, Any]:
        """``{"message_id": seq, "type": kind, ...payload}``, Tryton's bus format.

        ``type`` is the event's kind here, so a room's own ``type`` moves to ``roomType``.
        """
        payload = json.loads(event.payload)
        if "type" in payload:
            payload["roomType"] = payload.pop("type")
        return {"message_id": event.seq, "type": event.kind, **payload}
