"""``/ws``: the WebSocket route, served by flask-sock, and its entry in the OpenAPI description."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, current_app, g, request
from flask_smorest import Blueprint
from flask_sock import Sock

from adapters.websocket.connections import CLOSE_POLICY, SocketConnection, next_connection_order
from adapters.websocket.session import SocketSession
from hub.api.auth import platform_for_token, token_from_request
from hub.models import Transport

OPENAPI = {
    "get": {
        "tags": ["realtime"],
        "summary": "WebSocket: the caller's stream as frames; acks and calls in return",
        "description": "See docs/realtime.md. Token as bearer header or ?token=.",
        "security": [{"platformToken": []}],
        "responses": {"101": {"description": "Switching protocols"}},
    }
}


def serve(app: Flask, _blp: Blueprint, spec: APISpec) -> None:
    """Serve /ws with flask-sock (one thread per open socket; pinged when idle). A frame
    larger than HUB_MAX_BODY_BYTES closes the socket with 1009 (message too big) before it is
    read whole: the limit that HTTP bodies get."""
    app.config.setdefault(
        "SOCK_SERVER_OPTIONS",
        {
            "ping_interval": app.config["HUB_WS_PING_INTERVAL"],
            "max_message_size": app.config["MAX_CONTENT_LENGTH"],
        },
    )
    sock = Sock(app)

    @app.before_request
    def _number_the_connection() -> None:
        # flask-sock answers the handshake before it calls the view below: numbered there, a
        # connection whose thread was slow to reach the view could be taken for the newer one.
        if request.endpoint == "websocket":
            g.ws_order = next_connection_order()

    @sock.route("/ws")
    def websocket(ws: Any) -> None:
        token = token_from_request()
        platform = platform_for_token(token) if token else None
        if platform is None or not platform.enabled:
            ws.close(reason=CLOSE_POLICY, message="unknown or missing token")
            return
        if platform.transport == Transport.REST:
            ws.close(
                reason=CLOSE_POLICY, message=f"{platform.name} uses transport rest, not websocket"
            )
            return
        hub = current_app.extensions["hub"]
        connection = SocketConnection(ws, platform.id, platform.name, g.get("ws_order"))
        SocketSession(hub, connection, platform).run(ws.receive)

    spec.path(rule=next(r for r in app.url_map.iter_rules() if r.rule == "/ws"), operations=OPENAPI)
