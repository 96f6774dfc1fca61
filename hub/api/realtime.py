"""Real time: the WebSocket at /ws, long polling at /bus, and notifications."""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, current_app, g, request
from flask_smorest import Blueprint
from flask_sock import Sock

from adapters import OutgoingEvent
from adapters.poll.items import PollAdapter
from adapters.websocket.connections import CLOSE_POLICY, SocketConnection, next_connection_order
from adapters.websocket.session import SocketSession
from hub.api.auth import authenticate_platform, platform_for_token, token_from_request
from hub.errors import Conflict
from hub.ingest import notifications
from hub.models import Platform, Transport
from hub.outbox import streams as outbox
from hub.schemas.bodies import BusIn, BusOut, MessageAccepted, NotificationIn

blp = Blueprint("realtime", __name__, description="Real-time transports and notifications.")
SECURITY = [{"platformToken": []}]


def _hub() -> Any:
    return current_app.extensions["hub"]


def _consumes_by_pull(platform: Platform) -> None:
    if platform.transport == Transport.REST:
        raise Conflict(
            f"{platform.name} is registered with transport rest: its events are pushed to its "
            "endpoint; register it with transport websocket or poll to pull them"
        )


@blp.route("/bus", methods=["POST"])
@blp.arguments(BusIn, error_status_code=400)
@blp.response(200, BusOut)
@blp.doc(security=SECURITY)
def bus(data: dict[str, Any]) -> dict[str, Any]:
    """Long-poll the caller's stream: what follows ``last_message``, or wait for the next event."""
    platform = authenticate_platform()
    _consumes_by_pull(platform)
    hub = _hub()
    last = data["last_message"]
    with hub.db.write() as session:
        if last is not None:
            outbox.ack_through(session, platform.id, last)
        outbox.mark_up(session, platform.id)
    limit = hub.config["HUB_POLL_TIMEOUT"]
    deadline = time.monotonic() + min(data.get("timeout", limit), limit)
    # The notifier wakes it for this process's events and, through the wake socket and the
    # stream watcher, for other processes'; this re-check is only a safety net.
    recheck = hub.config["HUB_DELIVERY_POLL_INTERVAL"] * 5
    while True:
        seen = hub.notifier.version(platform.id)
        with hub.db.read() as session:
            events = outbox.pending_after(
                session, platform.id, last or 0, hub.config["HUB_DELIVERY_BATCH"]
            )
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            break
        hub.notifier.wait(platform.id, seen, min(remaining, recheck))
    return {
        "messages": [
            PollAdapter.item(OutgoingEvent(e.event_id, e.seq, e.kind, e.payload)) for e in events
        ],
        "last_message": events[-1].seq if events else last,
    }


def _is_admin() -> bool:
    expected = current_app.config.get("HUB_ADMIN_TOKEN")
    token = token_from_request()
    return bool(expected and token and hmac.compare_digest(token.encode(), expected.encode()))


@blp.route("/notification", methods=["POST"])
@blp.arguments(NotificationIn, error_status_code=400)
@blp.response(202, MessageAccepted)
@blp.doc(security=[{"platformToken": []}, {"adminToken": []}])
def notification(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Send a notification to "$all", to platforms by name, or to users by global id."""
    sender = None if _is_admin() else authenticate_platform()
    with _hub().db.write() as session:
        return notifications.notify(session, sender, data)


def register_socket(app: Flask) -> None:
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
        hub = _hub()
        connection = SocketConnection(ws, platform.id, platform.name, g.get("ws_order"))
        SocketSession(hub, connection, platform).run(ws.receive)
