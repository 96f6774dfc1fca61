"""Users and rooms of every platform, keyed by (platform, local id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.ids import global_id, local_id_value
from hub.models.base import Base, utcnow
from hub.models.platform import Platform


class LocalIdMixin:
    """A platform's own id, kept as given: the text form plus whether it was an integer."""

    local_id: Mapped[str] = mapped_column(String(255))
    local_id_is_int: Mapped[bool] = mapped_column(default=False)

    @property
    def local_value(self) -> int | str:
        return local_id_value(self.local_id, self.local_id_is_int)


class User(LocalIdMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform_id", "local_id", name="uq_users_platform_local"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    platform: Mapped[Platform] = relationship(lazy="joined")

    @property
    def global_id(self) -> str:
        return global_id(self.platform.name, self.local_id)


class Room(LocalIdMixin, Base):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("platform_id", "local_id", name="uq_rooms_platform_local"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    platform: Mapped[Platform] = relationship(lazy="joined")
    members: Mapped[list[RoomMember]] = relationship(
        back_populates="room", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def global_id(self) -> str:
        return global_id(self.platform.name, self.local_id)

    @property
    def is_public(self) -> bool:
        return self.type == "public"


class RoomMember(Base):
    __tablename__ = "room_members"
    __table_args__ = (UniqueConstraint("room_id", "user_id", name="uq_room_members_room_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    room: Mapped[Room] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")
