"""The frames a WebSocket platform gets and sends.

Out: ``{"seq", "event", "data"}`` for stored events, ``{"ref", "status", "message", ...}``
answering a call, ``{"status": 400, "error": ...}`` for a frame the hub cannot read. In:
``{"ack": n}`` (cumulative) and ``{"ref", "call", "data"}``.
"""

from __future__ import annotations

import json
from typing import Any


def event_frame(seq: int, kind: str, payload: str) -> str:
    """A stored event's frame, the payload embedded as stored (no re-encoding)."""
    return f'{{"seq":{seq},"event":"{kind}","data":{payload}}}'


def encode(frame: dict[Any, Any]) -> str:
    """Any other frame as compact JSON text."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
