"""Transports to platforms: one package each, one line each in this registry."""

from __future__ import annotations

from adapters import poll, websocket
from adapters.base import Adapter, OutgoingEvent, PlatformTarget, Transport
from adapters.errors import DeliveryError, Permanent, Retryable, Unsupported
from adapters.rest import RestAdapter

TRANSPORTS: dict[str, Transport] = {
    "rest": Transport("rest", connect=RestAdapter),
    "websocket": Transport("websocket", serve=websocket.serve),
    "poll": Transport("poll", serve=poll.serve),
}


def transports(pushing: bool) -> list[str]:
    """The transports whose streams the hub pushes (a delivery worker each), or the others
    (their platforms pull: WebSocket, long polling)."""
    return [name for name, transport in TRANSPORTS.items() if transport.pushes == pushing]


def adapter_for(target: PlatformTarget, timeout: float) -> Adapter:
    """Return the adapter of a push platform's transport."""
    transport = TRANSPORTS.get(target.transport)
    if transport is None or transport.connect is None:
        raise ValueError(f"no push adapter for transport {target.transport!r}")
    return transport.connect(target, timeout)


__all__ = [
    "TRANSPORTS",
    "Adapter",
    "DeliveryError",
    "OutgoingEvent",
    "Permanent",
    "PlatformTarget",
    "Retryable",
    "Transport",
    "Unsupported",
    "adapter_for",
    "transports",
]
