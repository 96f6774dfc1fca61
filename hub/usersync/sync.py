"""The user sync: pull every enabled ``rest`` platform's users and reconcile them with the hub.

For each platform, ``GET <endpoint>users`` runs with no transaction open; then one write
transaction registers new users, renames changed ones and forwards each change (see
``hub.reconcile``). A platform that is down or answers garbage is skipped and reported; it never
stops the others. A dry run computes the same diff in a read transaction and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from adapters import DeliveryError, PlatformTarget, Retryable, adapter_for
from hub.db import Database
from hub.errors import BadRequest, NotFound
from hub.ingest.directory import platform_by_name
from hub.models import Platform, Transport, utcnow
from hub.usersync import jobs
from hub.usersync.reconcile import UserDiff, reconcile_users

log = logging.getLogger(__name__)

JOB = "user-sync"
_PG_LOCK_KEY = 727_364_002  # with the platform id: one reconcile of a platform at a time

Progress = Callable[[int, int, "PlatformSync"], None]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


@dataclass
class PlatformSync:
    """What the sync did for one platform; ``error`` says why it was skipped."""

    platform: str
    diff: UserDiff = field(default_factory=UserDiff)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "created": [c.to_dict() for c in self.diff.created],
            "renamed": [c.to_dict() for c in self.diff.renamed],
            "vanished": [c.to_dict() for c in self.diff.vanished],
            "invalid": list(self.diff.invalid),
            "error": self.error,
        }


@dataclass
class SyncReport:
    """The outcome of one sync run, platform by platform."""

    dry_run: bool
    delete_vanished: bool
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    platforms: list[PlatformSync] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "deleteVanished": self.delete_vanished,
            "startedAt": _iso(self.started_at),
            "finishedAt": _iso(self.finished_at),
            "platforms": [p.to_dict() for p in self.platforms],
        }


def sync_targets(db: Database, name: str | None = None) -> list[PlatformTarget]:
    """Return the enabled rest platforms to sync (only ``name`` if given; 404/400 if it can't)."""
    with db.read() as session:
        if name is not None:
            platform = platform_by_name(session, name)
            if platform is None:
                raise NotFound(f"unknown platform {name!r}")
            if not platform.enabled or platform.transport != Transport.REST:
                raise BadRequest(f"{platform.name} is not an enabled rest platform")
            platforms = [platform]
        else:
            platforms = list(
                session.execute(
                    select(Platform)
                    .where(Platform.enabled.is_(True), Platform.transport == Transport.REST)
                    .order_by(Platform.id)
                ).scalars()
            )
        return [
            PlatformTarget(p.id, p.name, str(p.transport), p.endpoint, p.token) for p in platforms
        ]


def fetch(target: PlatformTarget, timeout: float) -> list[Any]:
    """Call ``GET users`` on a platform; raise DeliveryError if it is down or answers garbage."""
    adapter = adapter_for(target, timeout)
    try:
        return adapter.fetch_users()
    finally:
        adapter.close()


def sync_platform(
    db: Database, target: PlatformTarget, timeout: float, dry_run: bool, delete_vanished: bool
) -> PlatformSync:
    """Sync one platform; any failure is reported in the result, never raised."""
    result = PlatformSync(target.name)
    try:
        entries = fetch(target, timeout)
    except Retryable as exc:
        result.error = f"down: {exc.message}"
        return result
    except (DeliveryError, ValueError) as exc:
        result.error = getattr(exc, "message", str(exc))
        return result
    try:
        transaction = db.read() if dry_run else db.write()
        with transaction as session:
            if not (dry_run or db.is_sqlite):
                # Two syncs of one platform at once (cron and a manual run) would both forward.
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:k, :p)"),
                    {"k": _PG_LOCK_KEY, "p": target.id},
                )
            platform = session.get(Platform, target.id)
            if platform is None:
                result.error = "removed while the sync ran"
                return result
            result.diff = reconcile_users(
                session, platform, entries, apply=not dry_run, delete_vanished=delete_vanished
            )
    except Exception as exc:  # one platform's failure must not stop the others
        log.exception("user sync of %s failed", target.name)
        result.error = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    return result


def sync_users(
    db: Database,
    config: Mapping[str, Any],
    *,
    dry_run: bool = False,
    platform: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync every enabled rest platform (or one); return the report."""
    report = SyncReport(dry_run, bool(config["HUB_SYNC_DELETE_VANISHED"]))
    targets = sync_targets(db, platform)
    for index, target in enumerate(targets, 1):
        result = sync_platform(
            db, target, config["HUB_DELIVERY_TIMEOUT"], dry_run, report.delete_vanished
        )
        report.platforms.append(result)
        if progress is not None:
            progress(index, len(targets), result)
    report.finished_at = utcnow()
    _log(report)
    return report


def sync_now(
    db: Database,
    config: Mapping[str, Any],
    *,
    dry_run: bool = False,
    platform: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Run the sync on demand; a real run is recorded in ``job_runs`` like the nightly one."""

    def work() -> SyncReport:
        return sync_users(db, config, dry_run=dry_run, platform=platform, progress=progress)

    if dry_run:
        return work()
    sync_targets(db, platform)  # an unknown platform is refused before anything is recorded
    report = jobs.run_once(db, JOB, jobs.manual_period(), work)
    assert report is not None  # a manual period is unique
    return report


def _log(report: SyncReport) -> None:
    dry = " (dry run)" if report.dry_run else ""
    for result in report.platforms:
        if result.error:
            log.warning("user sync%s: %s skipped: %s", dry, result.platform, result.error)
            continue
        d = result.diff
        counts = (len(d.created), len(d.renamed), len(d.vanished), len(d.invalid))
        log.info(
            "user sync%s: %s: %d new, %d renamed, %d vanished, %d invalid",
            dry,
            result.platform,
            *counts,
        )
