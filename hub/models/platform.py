"""A registered chat platform: its registry entry, its stream counter and its health."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Integer, String, Text
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, utcnow


class Transport(enum.StrEnum):
    REST = "rest"
    WEBSOCKET = "websocket"
    POLL = "poll"


class Health(enum.StrEnum):
    UP = "up"
    DOWN = "down"


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Names match case-insensitively: the key is the lower-cased name, unique.
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str | None] = mapped_column(String(2048))
    token: Mapped[str] = mapped_column(String(512), unique=True)
    support_audio: Mapped[bool] = mapped_column(default=False)
    support_image: Mapped[bool] = mapped_column(default=False)
    transport: Mapped[Transport] = mapped_column(
        Enum(
            Transport, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        ),
        default=Transport.REST,
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    wants_recipients: Mapped[bool] = mapped_column(default=True)
    # Cleared when a rest platform answers 404 to POST notification; set again on registration.
    takes_notifications: Mapped[bool] = mapped_column(default=True, server_default=sa_true())

    # The last seq handed out in this platform's stream; bumped under the row lock.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)

    health: Mapped[Health] = mapped_column(
        Enum(Health, native_enum=False, length=8, values_callable=lambda e: [m.value for m in e]),
        default=Health.UP,
    )
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    users_synced_at: Mapped[datetime | None]

    # Which hub process delivers this platform's stream, until when (see hub.outbox.leases).
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
