"""The calls platforms make on the hub (TP2): directory reads, user/room/message, ping."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask_smorest import Blueprint
from sqlalchemy import select

from hub.api.auth import authenticate_platform, platform_for_token, token_from_request
from hub.errors import NotFound, Unauthorized
from hub.ingest import calls
from hub.ingest.directory import platform_by_name
from hub.models import Platform, User
from hub.monitoring.status import pending_count
from hub.outbox.leases import mark_up
from hub.routing.payloads import user_payload
from hub.schemas.calls import (
    Envelope,
    MessageAccepted,
    MessageIn,
    PlatformOut,
    RoomIn,
    UserEnvelope,
    UserIn,
    UserOut,
    UsersQuery,
)

blp = Blueprint("platform", __name__, description="Calls a platform makes on the hub.")
SECURITY = [{"platformToken": []}]
PUBLIC_ENDPOINTS = {"platform.ping"}


@blp.before_request
def _authenticate() -> None:
    if request.endpoint not in PUBLIC_ENDPOINTS:
        g.platform = authenticate_platform()


def _db():  # type: ignore[no-untyped-def]
    return current_app.extensions["hub"].db


def _call(call: str, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Carry out a validated call for the caller, once per Idempotency-Key / clientMessageId."""
    hub = current_app.extensions["hub"]
    return calls.perform(hub, g.platform, call, data, request.headers.get("Idempotency-Key"))


@blp.route("/platforms", methods=["GET"])
@blp.response(200, PlatformOut(many=True))
@blp.doc(security=SECURITY)
def list_platforms() -> list[dict[str, Any]]:
    """List the platforms with their capabilities and users."""
    with _db().read() as session:
        platforms = (
            session.execute(
                select(Platform).where(Platform.enabled.is_(True)).order_by(Platform.id)
            )
            .scalars()
            .all()
        )
        users = session.execute(select(User).order_by(User.id)).scalars().all()
        by_platform: dict[int, list[dict[str, Any]]] = {}
        for user in users:
            by_platform.setdefault(user.platform_id, []).append(
                {"id": user.local_value, "name": user.name, "platform": user.platform.name}
            )
        return [
            {
                "name": p.name,
                "supportAudio": p.support_audio,
                "supportImage": p.support_image,
                "users": by_platform.get(p.id, []),
            }
            for p in platforms
        ]


@blp.route("/users", methods=["GET"])
@blp.arguments(UsersQuery, location="query", error_status_code=400)
@blp.response(200, UserOut(many=True))
@blp.doc(security=SECURITY)
def list_users(query: dict[str, Any]) -> list[dict[str, Any]]:
    """List every user the hub knows; ``?platform=`` keeps one platform's."""
    with _db().read() as session:
        statement = select(User).order_by(User.id)
        if query.get("platform"):
            platform = platform_by_name(session, query["platform"])
            if platform is None:
                raise NotFound(f"unknown platform {query['platform']!r}")
            statement = statement.where(User.platform_id == platform.id)
        return [user_payload(u) for u in session.execute(statement).scalars()]


@blp.route("/user", methods=["POST"])
@blp.arguments(UserIn(), error_status_code=400)
@blp.response(201, UserEnvelope, description="Created")
@blp.alt_response(200, schema=UserEnvelope, description="Updated (or unchanged)")
@blp.doc(security=SECURITY)
def post_user(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create or update a user of the calling platform; forwarded to every other platform."""
    return _call("user", data)


@blp.route("/room", methods=["POST"])
@blp.arguments(RoomIn(), error_status_code=400)
@blp.response(201, UserEnvelope, description="Created")
@blp.alt_response(200, schema=UserEnvelope, description="Updated (or unchanged)")
@blp.doc(security=SECURITY)
def post_room(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create or update a room of the calling platform; forwarded to the platforms concerned."""
    return _call("room", data)


@blp.route("/message", methods=["POST"])
@blp.arguments(MessageIn(), error_status_code=400)
@blp.response(202, MessageAccepted, description="Stored; queued for every member platform")
@blp.doc(security=SECURITY)
def post_message(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Accept a message into a room; it is delivered to every member platform but the caller."""
    answer = _call("message", data)
    current_app.extensions["hub"].metrics.accepted.inc()
    return answer


@blp.route("/ping", methods=["GET", "POST"])
@blp.response(200, Envelope)
def ping() -> dict[str, Any]:
    """Liveness, no token needed. With a valid token: "I am back", replay my queue now."""
    token = token_from_request()
    if token is None:
        return {"status": 200, "message": "pong"}
    platform = platform_for_token(token)
    if platform is None:
        raise Unauthorized("unknown token")
    with _db().write() as session:
        mark_up(session, platform.id)
    with _db().read() as session:  # counted outside the write lock: the queue may be long
        pending = pending_count(session, platform.id)
    return {"status": 200, "message": f"pong; {platform.name} is up, {pending} event(s) to replay"}
