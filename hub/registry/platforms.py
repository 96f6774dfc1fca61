"""The platform registry: platforms.json at start, and registration at run time."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db import Database
from hub.db.locks import lock_directory
from hub.errors import BadRequest
from hub.ingest.directory import platform_by_name
from hub.models import Platform, Transport
from hub.registry.onboarding import send_existing
from hub.schemas.admin import PlatformEntrySchema

log = logging.getLogger(__name__)


def register(session: Session, entry: dict[str, Any]) -> tuple[Platform, bool]:
    """Create or update a platform by name from a validated entry; return it and if it is new.

    A new platform is onboarded: it is sent what already exists, and its own users are pulled
    by its delivery worker before anything else (``users_synced_at`` stays empty until then).
    """
    name = entry["name"]
    lock_directory(session, exclusive=True)  # see what concurrent writers committed
    holder = session.execute(
        select(Platform).where(Platform.token == entry["token"])
    ).scalar_one_or_none()
    if holder is not None and holder.name_key != name.lower():
        raise BadRequest(
            "this token is already used by another platform",
            {"token": ["Already used by another platform."]},
        )
    platform = platform_by_name(session, name)
    created = platform is None
    if platform is None:
        platform = Platform(name_key=name.lower(), last_seq=0)
        session.add(platform)
    platform.name = name
    platform.endpoint = entry.get("endpoint")
    platform.token = entry["token"]
    platform.support_audio = entry["supportAudio"]
    platform.support_image = entry["supportImage"]
    platform.transport = Transport(entry["transport"])
    platform.enabled = entry["enabled"]
    platform.wants_recipients = entry["wantsRecipients"]
    platform.takes_notifications = True  # learnt again from its answers
    session.flush()
    if created:
        sent = send_existing(session, platform) if platform.enabled else 0
        log.info(
            "registered platform %s (%s); queued %d existing users and rooms for it",
            name,
            platform.transport,
            sent,
        )
    return platform, created


def validate_entry(raw: Any) -> dict[str, Any]:
    """Validate one registry entry; BadRequest names the fields that are wrong."""
    try:
        return PlatformEntrySchema().load(raw)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise BadRequest("invalid platform entry", messages) from exc


def load_file(db: Database, path: str | Path) -> list[str]:
    """Upsert every entry of a platforms.json file; return the names; raise on a bad file."""
    path = Path(path)
    if not path.exists():
        log.warning("no platforms file at %s; register platforms with POST /admin/platforms", path)
        return []
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise ValueError(f"{path} must hold a JSON list of platform entries")
    entries = []
    for index, item in enumerate(raw):
        try:
            entries.append(validate_entry(item))
        except BadRequest as exc:
            raise ValueError(f"{path}, entry {index}: {exc.errors}") from exc
    names = []
    with db.write() as session:
        for entry in entries:
            register(session, entry)
            names.append(entry["name"])
    return names
