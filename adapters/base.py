"""The small contract every transport to a platform implements."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class PlatformTarget:
    """What a transport needs to reach one platform, detached from any database session."""

    id: int
    name: str
    transport: str
    endpoint: str | None
    token: str


@dataclass(frozen=True)
class OutgoingEvent:
    event_id: str
    seq: int
    kind: str  # user | room | message | notification
    payload: str  # JSON, rendered when enqueued


class Adapter(ABC):
    """Send one event to one platform; raise ``Retryable`` or ``Permanent`` on failure."""

    transport: ClassVar[str]
    # Push transports (rest) are driven by a delivery worker; pull transports serve a connection.
    pushes: ClassVar[bool] = True

    def __init__(self, target: PlatformTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout

    def send(self, event: OutgoingEvent) -> None:
        """Deliver one event (push transports); pull transports are served by the hub's routes."""
        raise NotImplementedError(f"{self.transport} platforms pull their events")

    def fetch_users(self) -> list[dict[str, Any]]:
        """Return the platform's own users as ``[{"id", "name"}]``, where the transport can."""
        raise NotImplementedError(f"{self.transport} platforms cannot be asked for their users")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
