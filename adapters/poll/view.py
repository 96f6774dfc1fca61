"""``POST /bus``: the long-poll route, documented with the API's real-time calls."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, current_app
from flask_smorest import Blueprint

from adapters.poll.bus import poll
from hub.api.auth import authenticate_platform
from hub.errors import Conflict
from hub.models import Transport
from hub.schemas.calls import BusIn, BusOut


def serve(_app: Flask, blp: Blueprint, _spec: APISpec) -> None:
    """Add ``POST /bus`` to the API's real-time blueprint."""

    @blp.route("/bus", methods=["POST"])
    @blp.arguments(BusIn, error_status_code=400)
    @blp.response(200, BusOut)
    @blp.doc(security=[{"platformToken": []}])
    def bus(data: dict[str, Any]) -> dict[str, Any]:
        """Long-poll the caller's stream: what follows ``last_message``, or wait for the next
        event."""
        platform = authenticate_platform()
        if platform.transport == Transport.REST:
            raise Conflict(
                f"{platform.name} is registered with transport rest: its events are pushed to "
                "its endpoint; register it with transport websocket or poll to pull them"
            )
        hub = current_app.extensions["hub"]
        return poll(hub, platform, data["last_message"], data.get("timeout"))
