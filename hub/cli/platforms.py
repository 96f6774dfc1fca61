"""Commands about the registry: list, add, remove and load platforms; their queues."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, func, select

from hub.api.auth import forget_tokens
from hub.cli.output import age, hub_of, short, table, when
from hub.errors import BadRequest
from hub.ingest.directory import platform_by_name
from hub.models import EventStatus, OutboxEvent, Platform, Room, User, utcnow
from hub.monitoring import status
from hub.registry import platforms as registry

PLATFORM_COLUMNS = ["NAME", "TRANSPORT", "ENABLED", "HEALTH", "USERS", "QUEUE", "OLDEST"]
QUEUE_COLUMNS = ["NAME", "HEALTH", "PENDING", "OLDEST", "DEAD", "LAST SEQ", "RETRY IN"]


def _platform_row(r: status.PlatformStatus) -> list[Any]:
    enabled = "yes" if r.enabled else "no"
    depth, oldest = r.queue_depth, age(r.oldest_pending_age)
    row = [r.name, r.transport, enabled, r.health, r.users, depth, oldest]
    return [*row, r.endpoint, short(r.last_error, 80)]


def _queue_row(r: status.PlatformStatus, now: datetime) -> list[Any]:
    retry = (r.next_attempt_at - now).total_seconds() if r.next_attempt_at else None
    health = r.health if r.enabled else "disabled"
    row = [r.name, health, r.queue_depth, age(r.oldest_pending_age), r.dead_letters, r.last_seq]
    return [*row, age(max(retry, 0)) if retry is not None else "-", when(r.last_success_at)]


@click.command("platforms")
@with_appcontext
def platforms() -> None:
    """List the platforms with health, queue depth, oldest pending age and last error.

    Tokens are never shown. QUEUE counts events waiting for the platform; OLDEST is how long
    the first of them has waited.
    """
    with hub_of().db.read() as session:
        rows = status.platform_statuses(session)
    if not rows:
        click.echo("no platforms registered (see 'flask hub add-platform --help')")
        return
    headers = [*PLATFORM_COLUMNS, "ENDPOINT", "LAST ERROR"]
    click.echo(table(headers, [_platform_row(r) for r in rows]))


@click.command("queue")
@with_appcontext
def queue() -> None:
    """Show each platform's stream: pending events, oldest wait, dead letters, next retry."""
    with hub_of().db.read() as session:
        rows = status.platform_statuses(session)
    now = utcnow()
    headers = [*QUEUE_COLUMNS, "LAST SUCCESS"]
    click.echo(table(headers, [_queue_row(r, now) for r in rows]))
    total = sum(r.queue_depth for r in rows)
    down = [r.name for r in rows if r.enabled and r.health != "up"]
    click.echo(f"\n{total} event(s) pending; down: {', '.join(down) or 'none'}")


@click.command("add-platform")
@click.option("--name", required=True, help="Platform name (1-64 characters, no ':').")
@click.option("--endpoint", help="Base URL of its API, e.g. http://chat:8080/api/ (rest).")
@click.option(
    "--token",
    prompt=True,
    hide_input=True,
    help="Its secret token (asked for when left out, so it stays out of the shell history).",
)
@click.option("--support-audio/--no-support-audio", default=False, show_default=True)
@click.option("--support-image/--no-support-image", default=False, show_default=True)
@click.option(
    "--transport",
    type=click.Choice(["rest", "websocket", "poll"]),
    default="rest",
    show_default=True,
)
@click.option("--enabled/--disabled", default=True, show_default=True)
@click.option(
    "--wants-recipients/--no-wants-recipients",
    default=True,
    show_default=True,
    help="Send it the 'recipients' list with each message.",
)
@with_appcontext
def add_platform(**options: Any) -> None:
    """Register a platform, or update it by name, like an entry of platforms.json.

    The entry is checked exactly as POST /admin/platforms checks it. A new platform is onboarded:
    the hub sends it the users and rooms that exist and pulls its own users.
    """
    raw = {
        "name": options["name"],
        "endpoint": options["endpoint"],
        "token": options["token"],
        "supportAudio": options["support_audio"],
        "supportImage": options["support_image"],
        "transport": options["transport"],
        "enabled": options["enabled"],
        "wantsRecipients": options["wants_recipients"],
    }
    try:
        entry = registry.validate_entry(raw)
        with hub_of().db.write() as session:
            platform, created = registry.register(session, entry)
            name = platform.name
    except BadRequest as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(f"{exc.message}: {details}" if details else exc.message) from exc
    forget_tokens()
    hub_of().dispatcher.refresh()
    if created:
        click.echo(f"registered {name}; the hub onboards it (sends what exists, pulls its users)")
    else:
        click.echo(f"updated {name}")


@click.command("remove-platform")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def remove_platform(name: str, yes: bool) -> None:
    """Remove a platform with its users, the rooms it created and its queued events.

    Events already queued for other platforms stay deliverable. Asks for confirmation.
    """
    db = hub_of().db
    with db.read() as session:
        platform = platform_by_name(session, name)
        if platform is None:
            raise click.ClickException(f"unknown platform {name!r}")
        counts = [
            session.execute(select(func.count()).where(*where)).scalar_one()
            for where in (
                (User.platform_id == platform.id,),
                (Room.platform_id == platform.id,),
                (OutboxEvent.platform_id == platform.id, OutboxEvent.status == EventStatus.PENDING),
            )
        ]
    users, rooms, queued = counts
    what = f"{platform.name} with {users} user(s), {rooms} room(s), {queued} queued event(s)"
    if not yes:
        click.confirm(f"Remove {what}?", abort=True)
    with db.write() as session:
        session.execute(delete(Platform).where(Platform.id == platform.id))
    forget_tokens()
    hub_of().dispatcher.refresh()
    click.echo(f"removed {what}")


@click.command("load-platforms")
@click.option(
    "--file",
    "path",
    default=None,
    help="Registry file (default: HUB_PLATFORMS_FILE, i.e. platforms.json).",
)
@with_appcontext
def load_platforms(path: str | None) -> None:
    """Upsert every entry of a platforms.json file by name."""
    path = path or current_app.config["HUB_PLATFORMS_FILE"]
    try:
        names = registry.load_file(hub_of().db, path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    forget_tokens()
    click.echo(f"loaded {len(names)} platform(s) from {path}: {', '.join(names) or '-'}")


COMMANDS = [platforms, queue, add_platform, remove_platform, load_platforms]
