"""Checks every call shares: a platform speaks for its own users, and is known to the session."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.errors import Forbidden, NotFound
from hub.models import Platform

Answer = tuple[dict[str, Any], int]


def speaks_for_itself(caller: Platform, claimed: str | None) -> None:
    """Refuse a call that names another platform as its users' or sender's platform."""
    if claimed is not None and claimed.lower() != caller.name_key:
        raise Forbidden(f"{caller.name} cannot speak for users of {claimed}")


def attached(session: Session, caller: Platform) -> Platform:
    """The caller as a row of this session (users and rooms are created under it)."""
    platform = session.get(Platform, caller.id)
    if platform is None:
        raise NotFound(f"unknown platform {caller.name!r}")
    return platform


def saved(kind: str, global_id: str, created: bool, changed: bool) -> Answer:
    """The answer to a user or room call: 201 when created, else 200, saying what changed."""
    status = 201 if created else 200
    verb = "created" if created else ("updated" if changed else "unchanged")
    answer = {"status": status, "message": f"{kind} {global_id} {verb}", "globalId": global_id}
    return answer, status
