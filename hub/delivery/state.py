"""What a delivery worker reads of its platform while its stream does not flow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters import PlatformTarget
from hub.db import Database
from hub.models import Health, Platform
from hub.outbox.reader import StreamReader


@dataclass(frozen=True)
class StreamState:
    """A platform's health, its retry time, whether it was onboarded and has events waiting."""

    health: Health
    failures: int
    next_attempt_at: datetime | None
    users_synced: bool
    has_pending: bool


def target_of(platform: Platform) -> PlatformTarget:
    """What a transport needs to reach a platform."""
    return PlatformTarget(
        platform.id, platform.name, str(platform.transport), platform.endpoint, platform.token
    )


def read_state(db: Database, reader: StreamReader, platform_id: int) -> StreamState | None:
    """The platform's state now; None once it is gone from the registry."""
    with db.read() as session:
        platform = session.get(Platform, platform_id)
        if platform is None:
            return None
        return StreamState(
            platform.health,
            platform.failures,
            platform.next_attempt_at,
            platform.users_synced_at is not None,
            bool(reader.read(platform_id, 0, 1)),
        )
