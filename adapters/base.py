"""The small interface every transport implements, and what it carries.

A transport is one way of carrying a platform's stream (``Transport``). A push transport
(rest) gives delivery an ``Adapter`` per platform: ``send`` one event, ``fetch_users``, ``close``.
A pull transport (websocket, poll) serves routes that its platforms call and reads the stream
itself (``serve``). A new transport is one package in ``adapters/`` and one line in
``adapters/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from flask import Flask
from flask_smorest import Blueprint


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
    """One event of a platform's stream, as every transport sends it."""

    event_id: str
    seq: int
    kind: str  # user | room | message | notification
    payload: str  # JSON, rendered when enqueued


class Adapter(ABC):
    """A push transport's link to one platform; failures raise ``adapters.errors`` types."""

    def __init__(self, target: PlatformTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout

    @abstractmethod
    def send(self, event: OutgoingEvent) -> None:
        """Deliver one event; return once the platform has taken it."""

    @abstractmethod
    def fetch_users(self) -> list[dict[str, Any]]:
        """Return the platform's own users as ``[{"id", "name"}]``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@dataclass(frozen=True)
class Transport:
    """One transport in the registry: how the hub pushes through it, or what it serves."""

    name: str
    # Push transports: the adapter a delivery worker sends one platform's stream through.
    connect: Callable[[PlatformTarget, float], Adapter] | None = None
    # Pull transports: add the routes their platforms call, to the app or to the API's
    # real-time blueprint, and document them in the OpenAPI description.
    serve: Callable[[Flask, Blueprint, APISpec], None] | None = None

    @property
    def pushes(self) -> bool:
        return self.connect is not None
