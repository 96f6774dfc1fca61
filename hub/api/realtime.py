"""Real time: notifications, and the routes of the pull transports (``/ws``, ``/bus``).

The transports' routes live in their adapter packages; ``blueprint`` adds them to this
blueprint (built per app) so that the OpenAPI description lists them with the notifications.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, current_app
from flask_smorest import Blueprint

from adapters import TRANSPORTS
from hub.api.auth import authenticate_platform, is_admin_token, token_from_request
from hub.ingest import notifications
from hub.schemas.calls import MessageAccepted, NotificationIn


def blueprint(app: Flask, spec: APISpec) -> Blueprint:
    """The real-time blueprint of ``app``: notifications and every pull transport's routes."""
    blp = Blueprint("realtime", __name__, description="Real-time transports and notifications.")

    @blp.route("/notification", methods=["POST"])
    @blp.arguments(NotificationIn, error_status_code=400)
    @blp.response(202, MessageAccepted)
    @blp.doc(security=[{"platformToken": []}, {"adminToken": []}])
    def notification(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Send a notification to "$all", to platforms by name, or to users by global id."""
        sender = None if is_admin_token(token_from_request()) else authenticate_platform()
        with current_app.extensions["hub"].db.write() as session:
            return notifications.notify(session, sender, data)

    for transport in TRANSPORTS.values():
        if transport.serve is not None:
            transport.serve(app, blp, spec)
    return blp
