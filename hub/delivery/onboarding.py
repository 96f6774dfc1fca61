"""A new platform's first delivery step: take in the users it already has (``GET users``)."""

from __future__ import annotations

import logging

from adapters import Adapter, PlatformTarget
from adapters.errors import Permanent
from hub.db import Database
from hub.models import Platform
from hub.outbox import leases
from hub.registry.onboarding import apply_users

log = logging.getLogger(__name__)


def pull_users(db: Database, target: PlatformTarget, adapter: Adapter) -> bool:
    """Ask the platform for its users and register them, forwarding each to the others; mark
    it up. A refusal (4xx) onboards it without users; ``Retryable`` propagates. False when the
    platform is gone."""
    try:
        users = adapter.fetch_users()
    except Permanent as exc:
        log.warning(
            "%s: GET users refused (%s); onboarding goes on without its users",
            target.name,
            exc.message,
        )
        users = []
    with db.write() as session:
        platform = session.get(Platform, target.id)
        if platform is None:
            return False
        pulled = apply_users(session, platform, users)
        leases.mark_up(session, platform.id)
    log.info(
        "%s: pulled users: %d new, %d renamed, %d invalid",
        target.name,
        len(pulled.created),
        len(pulled.renamed),
        len(pulled.invalid),
    )
    return True
