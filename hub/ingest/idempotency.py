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
from hub.ingest.checks import Answer
from hub.models import IdempotencyKey, utcnow


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
    """Run ``work`` in one write transaction, or return the answer remembered under ``key``.

    A unique-constraint race (on PostgreSQL, two requests creating the same user or using the
    same key at once) is run again once: the second time it sees what the other committed.
    """
    digest = request_hash(body) if key else ""
    for attempt in range(2):
        try:
            with db.write() as session:
                if key:
                    earlier = _remembered(session, platform_id, key, digest)
                    if earlier is not None:
                        return earlier
                answer, status = work(session)
                if key:
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
            if attempt == 1:
                break
    raise Conflict("a concurrent request changed the same thing; send it again")


def forget_expired(session: Session, ttl_seconds: float) -> int:
    """Drop keys older than the time they must be remembered."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    return session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
    ).rowcount
