"""Who owns a platform's stream, and whether the platform answers: leases and health.

One process at a time sends a platform's stream: a delivery worker (REST) or a WebSocket
session owns it under a lease in the platform's row (``lease_owner``, ``lease_until``). A
worker takes a free or expired lease (``acquire``); a new socket takes the stream whoever held
it (``take_over``: the newest connection wins); an owner renews, and gives it back on leaving.
A crashed owner's lease runs out. Health is what the last call taught: ``mark_up`` (a success,
a ``/ping``, a socket opened) lets the stream flow at once, ``mark_down`` sets when to retry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.db import lease_moves, news
from hub.models import Health, Platform, Transport, utcnow

_PLATFORMS = Platform.__table__


def _platform_update(platform_id: int):  # type: ignore[no-untyped-def]
    return update(_PLATFORMS).where(_PLATFORMS.c.id == platform_id)


def acquire(session: Session, platform_id: int, owner: str, seconds: float) -> bool:
    """Own a platform's stream for ``seconds`` unless another live owner holds it."""
    now = utcnow()
    result = session.connection().execute(
        _platform_update(platform_id)
        .where(
            or_(
                _PLATFORMS.c.lease_owner.is_(None),
                _PLATFORMS.c.lease_owner == owner,
                _PLATFORMS.c.lease_until < now,
            )
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)


def take_over(session: Session, platform_id: int, owner: str, seconds: float) -> None:
    """Own a platform's stream now, whoever owned it (a new socket takes over from an older
    one); the previous owner hears of it when this transaction commits."""
    session.connection().execute(
        _platform_update(platform_id).values(
            lease_owner=owner, lease_until=utcnow() + timedelta(seconds=seconds)
        )
    )
    lease_moves(session).add(platform_id)


def renew(session: Session, owner_prefix: str, seconds: float) -> set[str]:
    """Extend every lease whose owner starts with ``owner_prefix``; return those owners."""
    rows = session.connection().execute(
        update(_PLATFORMS)
        .where(_PLATFORMS.c.lease_owner.startswith(owner_prefix, autoescape=True))
        .values(lease_until=utcnow() + timedelta(seconds=seconds))
        .returning(_PLATFORMS.c.lease_owner)
    )
    return set(rows.scalars())


def release(session: Session, owner_prefix: str) -> None:
    """Give up every stream owned by an owner whose id starts with ``owner_prefix``."""
    session.connection().execute(
        update(_PLATFORMS)
        .where(_PLATFORMS.c.lease_owner.startswith(owner_prefix, autoescape=True))
        .values(lease_owner=None, lease_until=None)
    )


def release_down(session: Session, platform_id: int, owner: str, reason: str) -> None:
    """Give up a stream this socket owns and mark its platform down. Nothing changes when
    another socket (of this process or another) owns it now: that one is up."""
    session.connection().execute(
        _platform_update(platform_id)
        .where(or_(_PLATFORMS.c.lease_owner == owner, _PLATFORMS.c.lease_owner.is_(None)))
        .values(lease_owner=None, lease_until=None, health=Health.DOWN, last_error=reason)
    )


def mark_up(session: Session, platform_id: int) -> None:
    """Record that a platform answers again: its stream may flow at once."""
    session.connection().execute(
        _platform_update(platform_id).values(
            health=Health.UP, failures=0, next_attempt_at=None, last_success_at=utcnow()
        )
    )
    news(session).add(platform_id)


def mark_down(session: Session, platform_id: int, error: str, retry_at: datetime) -> int:
    """Record a failed call: the platform is down until ``retry_at``; return its failure count."""
    return (
        session.connection()
        .execute(
            _platform_update(platform_id)
            .values(
                health=Health.DOWN,
                failures=_PLATFORMS.c.failures + 1,
                last_error=error,
                next_attempt_at=retry_at,
            )
            .returning(_PLATFORMS.c.failures)
        )
        .scalar_one()
    )


def socket_owners(session: Session, platform_ids: set[int]) -> dict[int, str]:
    """The owner of each of these platforms' streams that is a live WebSocket session."""
    if not platform_ids:
        return {}
    rows = session.execute(
        select(Platform.id, Platform.lease_owner).where(
            Platform.id.in_(platform_ids),
            Platform.transport == Transport.WEBSOCKET,
            Platform.lease_owner.contains("/ws-", autoescape=True),
            Platform.lease_until > utcnow(),
        )
    )
    return {pid: owner for pid, owner in rows}
