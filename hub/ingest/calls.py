"""The platform calls that change things (user, room, message), for HTTP and WebSocket alike."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from hub.errors import BadRequest
from hub.ingest import direct, idempotency
from hub.ingest.checks import Answer
from hub.ingest.messages import accept_message
from hub.ingest.rooms import save_room
from hub.ingest.users import save_user
from hub.models import Platform
from hub.schemas.calls import MessageIn, RoomIn, UserIn

# One schema instance per call, reused: building a schema costs more than loading a body.
CALLS: dict[str, tuple[Schema, Any]] = {
    "user": (UserIn(), save_user),
    "room": (RoomIn(), save_room),
    "message": (MessageIn(), accept_message),
}


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"field.path": ["why", ...]}``."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": list(messages)}
    return {prefix or "_schema": [str(messages)]}


def load(call: str, body: Any) -> dict[str, Any]:
    """Validate a call's body; BadRequest names the fields that are wrong."""
    try:
        schema, _ = CALLS[call]
    except KeyError:
        choices = {"call": [f"One of: {', '.join(CALLS)}."]}
        raise BadRequest(f"unknown call {call!r}", choices) from None
    try:
        return schema.load(body)
    except ValidationError as exc:
        errors = flatten(exc.messages)
        raise BadRequest("invalid request: " + ", ".join(sorted(errors)), errors) from exc


def perform(
    hub: Any, caller: Platform, call: str, data: dict[str, Any], idempotency_key: str | None = None
) -> Answer:
    """Carry out a validated call for the calling platform, once per idempotency key."""
    if call == "message" and data.get("direct"):
        return direct.send(hub, caller, data)
    _, work = CALLS[call]
    key = idempotency_key or data.get("clientMessageId")
    return idempotency.run_once(
        hub.db, caller.id, key, data, lambda session: work(session, caller, data)
    )
