"""Transports to platforms: one module each, one line each in this registry."""

from __future__ import annotations

from adapters.base import Adapter, OutgoingEvent, PlatformTarget
from adapters.errors import DeliveryError, Permanent, Retryable, Unsupported
from adapters.poll.items import PollAdapter
from adapters.rest import RestAdapter
from adapters.websocket.frames import WebSocketAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "rest": RestAdapter,
    "websocket": WebSocketAdapter,
    "poll": PollAdapter,
}


def transports(pushing: bool) -> list[str]:
    """The transports whose streams the hub pushes (a delivery worker each), or the others
    (their platforms pull: WebSocket, long polling)."""
    return [name for name, cls in ADAPTERS.items() if cls.pushes == pushing]


def adapter_for(target: PlatformTarget, timeout: float) -> Adapter:
    """Return the adapter of the platform's transport."""
    try:
        adapter_class = ADAPTERS[target.transport]
    except KeyError:
        raise ValueError(f"no adapter for transport {target.transport!r}") from None
    return adapter_class(target, timeout)


__all__ = [
    "ADAPTERS",
    "Adapter",
    "DeliveryError",
    "OutgoingEvent",
    "Permanent",
    "PlatformTarget",
    "Retryable",
    "Unsupported",
    "adapter_for",
    "transports",
]
