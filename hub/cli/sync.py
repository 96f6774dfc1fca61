"""The ``sync-users`` command: the nightly user sync, now, with a line per platform."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from hub.cli.output import hub_of, short, table
from hub.errors import ApiError
from hub.usersync import sync as user_sync
from hub.usersync.sync import PlatformSync, SyncReport


def _counts(result: PlatformSync) -> str:
    d = result.diff
    return (
        f"{len(d.created)} new, {len(d.renamed)} renamed, "
        f"{len(d.vanished)} vanished, {len(d.invalid)} invalid"
    )


def _progress(index: int, total: int, result: PlatformSync) -> None:
    outcome = f"skipped: {result.error}" if result.error else _counts(result)
    click.echo(f"[{index}/{total}] {result.platform}: {outcome}")


def _diff_lines(report: SyncReport) -> list[str]:
    vanished = "deleted" if report.delete_vanished else "kept"
    lines = []
    for result in report.platforms:
        d = result.diff
        changes = [f"  + {c.global_id} {c.name}" for c in d.created]
        changes += [f"  ~ {c.global_id} {c.old_name} -> {c.name}" for c in d.renamed]
        changes += [f"  - {c.global_id} {c.name} (vanished; {vanished})" for c in d.vanished]
        changes += [f"  ! invalid entry {why}" for why in d.invalid]
        if changes:
            lines += [f"{result.platform}:", *changes]
    return lines


def _summary(report: SyncReport) -> str:
    rows = []
    for r in report.platforms:
        d = r.diff
        counts = [len(d.created), len(d.renamed), len(d.vanished), len(d.invalid)]
        rows.append([r.platform, *counts, "skipped: " + short(r.error, 50) if r.error else "ok"])
    headers = ["PLATFORM", "NEW", "RENAMED", "VANISHED", "INVALID", "STATUS"]
    return table(headers, rows)


@click.command("sync-users")
@click.option("--dry-run", is_flag=True, help="Show what would change; write and send nothing.")
@click.option("--platform", help="Sync only this platform.")
@click.option("--verbose", "-v", is_flag=True, help="Show every change (a dry run always does).")
@with_appcontext
def sync_users(dry_run: bool, platform: str | None, verbose: bool) -> None:
    """Pull every rest platform's users now, as the nightly sync does (HUB_SYNC_CRON).

    New users are registered and renamed ones updated, and each change is forwarded to the
    other platforms. Users a platform no longer lists are reported as vanished, and deleted only
    with HUB_SYNC_DELETE_VANISHED=on. A platform that is down or answers garbage is skipped and
    reported: that is not a failure of the sync, which exits 0. It exits 1 only when the sync
    could not run (an unknown platform, no database).
    """
    hub = hub_of()
    mode = " (dry run: nothing is written or sent)" if dry_run else ""
    click.echo(f"syncing users{mode}")
    try:
        report = user_sync.sync_now(
            hub.db, hub.config, dry_run=dry_run, platform=platform, progress=_progress
        )
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the sync could not run: database error: {exc}") from exc
    if not report.platforms:
        click.echo("no enabled rest platform to sync")
        return
    diff = _diff_lines(report) if dry_run or verbose else []
    if diff:
        click.echo("\nchanges:" if not dry_run else "\nwould change:")
        click.echo("\n".join(diff))
    click.echo("")
    click.echo(_summary(report))


COMMANDS = [sync_users]
