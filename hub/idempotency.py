"""Idempotency keys: a retried POST with the same key gets the first answer and stores nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db import Database
from hub.errors import Conflict
from hub.models import IdempotencyKey, utcnow

Answer = tuple[dict[str, Any], int]


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "token"}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _remembered(session: Session, platform_id: int, key: str, digest: str) -> Answer | None:
    row = session.execute(
        select(IdempotencyKey).where(
            IdempotencyKey.platform_id == platform_id, IdempotencyKey.key == key
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.request_hash != digest:
        raise Conflict(f"Idempotency key {key!r} was already used for a different request")
    return row.response, row.status_code


def run_once(
    db: Database,
    platform_id: int,
    key: str | None,
    body: dict[str, Any],
    work: Callable[[Session], Answer],
) -> Answer:
    """Run ``work`` in one write transaction, or return the answer remembered under ``key``."""
    if not key:
        with db.write() as session:
            return work(session)
    digest = request_hash(body)
    for _ in range(2):  # a concurrent twin may commit first: then read its answer
        try:
            with db.write() as session:
                earlier = _remembered(session, platform_id, key, digest)
                if earlier is not None:
                    return earlier
                answer, status = work(session)
                session.add(
                    IdempotencyKey(
                        platform_id=platform_id,
                        key=key,
                        request_hash=digest,
                        status_code=status,
                        response=answer,
                    )
                )
                session.flush()
                return answer, status
        except IntegrityError:
            continue
    raise Conflict(f"Idempotency key {key!r} is being used by a concurrent request")


def forget_expired(session: Session, ttl_seconds: float) -> int:
    """Drop keys older than the time they must be remembered."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    return session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
    ).rowcount
