"""The outbox: one row per event per receiving platform, ordered by that platform's seq."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, utcnow


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    SKIPPED = "skipped"  # a kind of event the platform does not take (a 404 on notification)


class EventKind(enum.StrEnum):
    USER = "user"
    ROOM = "room"
    MESSAGE = "message"
    NOTIFICATION = "notification"


def _enum(cls: type[enum.Enum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("platform_id", "seq", name="uq_outbox_platform_seq"),
        Index("ix_outbox_stream", "platform_id", "status", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The hub-wide event id, sent as webhook-id; it never changes, even when re-queued.
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    seq: Mapped[int]
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, 16))
    # Rendered for this receiver when enqueued, so every retry sends the same bytes.
    payload: Mapped[str] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus, 16), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it last joined the end of its stream (creation, or a dead letter's retry): the
    # maximum age and the "oldest pending" figure count from here.
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
