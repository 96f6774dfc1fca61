"""Admin calls: register platforms at run time, list and retry dead letters, sync users."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import delete

from hub.api.auth import authenticate_admin, forget_tokens
from hub.errors import NotFound
from hub.ingest.directory import platform_by_name
from hub.models import OutboxEvent, Platform
from hub.monitoring import status
from hub.outbox.outcomes import requeue_dead
from hub.registry import platforms as registry
from hub.schemas.admin import AdminPlatformOut, DeadLetterOut, DeadLettersQuery, PlatformEntrySchema
from hub.schemas.calls import Envelope
from hub.schemas.sync import SyncReportOut, SyncUsersQuery
from hub.usersync import sync as user_sync

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Operating the hub.")
SECURITY = [{"adminToken": []}]


@blp.before_request
def _authenticate() -> None:
    authenticate_admin()


def _hub():  # type: ignore[no-untyped-def]
    return current_app.extensions["hub"]


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _platform_view(s: status.PlatformStatus) -> dict[str, Any]:
    return {
        "name": s.name,
        "endpoint": s.endpoint,
        "transport": s.transport,
        "supportAudio": s.support_audio,
        "supportImage": s.support_image,
        "enabled": s.enabled,
        "wantsRecipients": s.wants_recipients,
        "health": s.health,
        "lastError": s.last_error,
        "nextAttemptAt": _iso(s.next_attempt_at),
        "queueDepth": s.queue_depth,
        "lastSeq": s.last_seq,
        "users": s.users,
    }


def _platform_views() -> dict[str, dict[str, Any]]:
    with _hub().db.read() as session:
        return {s.name: _platform_view(s) for s in status.platform_statuses(session)}


@blp.route("/platforms", methods=["GET"])
@blp.response(200, AdminPlatformOut(many=True))
@blp.doc(security=SECURITY)
def list_platforms() -> list[dict[str, Any]]:
    """List every platform with its health and queue depth (never its token)."""
    return list(_platform_views().values())


@blp.route("/platforms", methods=["POST"])
@blp.arguments(PlatformEntrySchema, error_status_code=400)
@blp.response(201, AdminPlatformOut, description="Registered")
@blp.alt_response(200, schema=AdminPlatformOut, description="Updated")
@blp.doc(security=SECURITY)
def register_platform(entry: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Register a platform (or update it by name); a new one is onboarded at once."""
    with _hub().db.write() as session:
        platform, created = registry.register(session, entry)
        name = platform.name
    forget_tokens()
    _hub().dispatcher.apply_changes()
    return _platform_views()[name], 201 if created else 200


@blp.route("/platforms/<name>", methods=["DELETE"])
@blp.response(200, Envelope)
@blp.doc(security=SECURITY)
def remove_platform(name: str) -> dict[str, Any]:
    """Remove a platform with its users, rooms and queued events."""
    with _hub().db.write() as session:
        platform = platform_by_name(session, name)
        if platform is None:
            raise NotFound(f"unknown platform {name!r}")
        session.execute(delete(Platform).where(Platform.id == platform.id))
    forget_tokens()
    _hub().dispatcher.apply_changes()
    return {"status": 200, "message": f"platform {platform.name} removed"}


def dead_letter_view(event: OutboxEvent, platform_name: str) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "platform": platform_name,
        "seq": event.seq,
        "event": str(event.kind),
        "attempts": event.attempts,
        "lastError": event.last_error,
        "createdAt": _iso(event.created_at),
        "deadAt": _iso(event.dead_at),
        "payload": json.loads(event.payload),
    }


@blp.route("/deadletters", methods=["GET"])
@blp.arguments(DeadLettersQuery, location="query", error_status_code=400)
@blp.response(200, DeadLetterOut(many=True))
@blp.doc(security=SECURITY)
def list_dead_letters(query: dict[str, Any]) -> list[dict[str, Any]]:
    """List dead letters, newest first, with the error that put them there."""
    with _hub().db.read() as session:
        rows = status.dead_letters(session, query.get("platform"), query["limit"])
        return [dead_letter_view(event, name) for event, name in rows]


@blp.route("/deadletters/<event_id>/retry", methods=["POST"])
@blp.response(200, Envelope)
@blp.doc(security=SECURITY)
def retry_dead_letter(event_id: str) -> dict[str, Any]:
    """Queue a dead letter again at the end of its platform's stream, with the same event id."""
    with _hub().db.write() as session:
        event = requeue_dead(session, event_id)
        if event is None:
            raise NotFound(f"no dead letter {event_id!r}")
        seq = event.seq
    return {"status": 200, "message": f"dead letter {event_id} queued again as seq {seq}"}


@blp.route("/sync-users", methods=["POST"])
@blp.arguments(SyncUsersQuery, location="query", error_status_code=400)
@blp.response(200, SyncReportOut)
@blp.doc(security=SECURITY)
def sync_users(query: dict[str, Any]) -> dict[str, Any]:
    """Pull every rest platform's users now; a down platform is reported, not fatal."""
    report = user_sync.sync_now(
        _hub().db, _hub().config, dry_run=query["dryRun"], platform=query.get("platform")
    )
    return report.to_dict()
