"""What the dashboard shows, read in one transaction and shaped for the templates.

Rows carry display text only: tokens are never read into them, and every error a platform sent
back goes through a ``Redactor`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Health, Platform, Room, User, utcnow
from hub.monitoring import status
from hub.web.text import MAX_ERROR, Redactor, duration, iso, safe_endpoint, utc_text
from hub.web.traffic import Traffic, messages_per_minute

DEAD_LETTERS_SHOWN = 50


@dataclass(frozen=True)
class PlatformRow:
    name: str
    endpoint: str
    transport: str
    state: str  # up, down or disabled
    last_error: str
    last_error_full: str
    queue_depth: int
    oldest_age: str
    next_retry: str
    next_retry_iso: str
    next_retry_in: str
    dead_letters: int
    users: int
    last_seq: int


@dataclass(frozen=True)
class DeadLetterRow:
    event_id: str
    platform: str
    seq: int
    kind: str
    attempts: int
    error: str
    error_full: str
    dead_at: str
    dead_at_iso: str
    age: str


@dataclass(frozen=True)
class Dashboard:
    platforms: list[PlatformRow]
    dead_letters: list[DeadLetterRow]
    dead_total: int
    users: int
    rooms: int
    traffic: Traffic
    now: datetime

    @property
    def platforms_down(self) -> int:
        return sum(1 for p in self.platforms if p.state == "down")

    @property
    def queued(self) -> int:
        return sum(p.queue_depth for p in self.platforms)


def _due(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    seconds = (moment - now).total_seconds()
    return f"in {duration(seconds)}" if seconds >= 1 else "due now"


def _platform_rows(session: Session, now: datetime, redact: Redactor) -> list[PlatformRow]:
    rows = []
    for p in sorted(status.platform_statuses(session), key=lambda s: s.name.lower()):
        state = "disabled" if not p.enabled else ("up" if p.health == Health.UP else "down")
        retry = p.next_attempt_at if state == "down" else None
        oldest = p.oldest_pending_age
        rows.append(
            PlatformRow(
                name=p.name,
                endpoint=redact(safe_endpoint(p.endpoint)),
                transport=p.transport,
                state=state,
                last_error=redact(p.last_error, MAX_ERROR),
                last_error_full=redact(p.last_error),
                queue_depth=p.queue_depth,
                oldest_age=duration(oldest) if oldest is not None else "",
                next_retry=utc_text(retry),
                next_retry_iso=iso(retry),
                next_retry_in=_due(retry, now),
                dead_letters=p.dead_letters,
                users=p.users,
                last_seq=p.last_seq,
            )
        )
    return rows


def _dead_letter_rows(session: Session, now: datetime, redact: Redactor) -> list[DeadLetterRow]:
    return [
        DeadLetterRow(
            event_id=event.event_id,
            platform=name,
            seq=event.seq,
            kind=str(event.kind),
            attempts=event.attempts,
            error=redact(event.last_error, MAX_ERROR),
            error_full=redact(event.last_error),
            dead_at=utc_text(event.dead_at),
            dead_at_iso=iso(event.dead_at),
            age=duration((now - event.dead_at).total_seconds()) if event.dead_at else "",
        )
        for event, name in status.dead_letters(session, limit=DEAD_LETTERS_SHOWN)
    ]


def load(session: Session, admin_token: str | None) -> Dashboard:
    """Read everything the dashboard shows."""
    now = utcnow()
    tokens = session.execute(select(Platform.token)).scalars().all()
    redact = Redactor([*tokens, admin_token])
    dead_total = status.dead_letter_count(session)
    return Dashboard(
        platforms=_platform_rows(session, now, redact),
        dead_letters=_dead_letter_rows(session, now, redact),
        dead_total=dead_total,
        users=session.execute(select(func.count()).select_from(User)).scalar_one(),
        rooms=session.execute(select(func.count()).select_from(Room)).scalar_one(),
        traffic=messages_per_minute(session, now),
        now=now,
    )


def platform_names(session: Session) -> list[str]:
    """Return the registered platforms' names, for the replay form."""
    return list(session.execute(select(Platform.name).order_by(Platform.name_key)).scalars())
