"""The hub's tables as SQLAlchemy 2 typed models."""

from hub.models.base import Base, utcnow
from hub.models.directory import Room, RoomMember, User
from hub.models.jobs import JobRun
from hub.models.message import IdempotencyKey, Message
from hub.models.outbox import EventKind, EventStatus, OutboxEvent
from hub.models.platform import Health, Platform, Transport

__all__ = [
    "Base",
    "EventKind",
    "EventStatus",
    "Health",
    "IdempotencyKey",
    "JobRun",
    "Message",
    "OutboxEvent",
    "Platform",
    "Room",
    "RoomMember",
    "Transport",
    "User",
    "utcnow",
]
