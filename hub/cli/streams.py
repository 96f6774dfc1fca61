"""Commands about the streams: dead letters and their retries, and scoped replay."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from hub.cli.output import hub_of, short, table, when
from hub.errors import NotFound
from hub.ingest.directory import platform_by_name
from hub.monitoring import status
from hub.outbox.outcomes import requeue_dead, requeue_platform_dead_letters
from hub.outbox.replay import replay_stream


@click.command("deadletters")
@click.option("--platform", help="Only this platform's dead letters.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
def deadletters(platform: str | None, limit: int) -> None:
    """List dead letters, newest first, with the error that put them there.

    A dead letter is an event a platform refused for good (a 4xx) or that kept failing past
    HUB_DEAD_LETTER_AFTER. Queue one again with 'retry-deadletter EVENT_ID'.
    """
    with hub_of().db.read() as session:
        rows = [
            [e.event_id, name, e.seq, str(e.kind), e.attempts, when(e.dead_at), short(e.last_error)]
            for e, name in status.dead_letters(session, platform, limit)
        ]
    if not rows:
        click.echo("no dead letters")
        return
    headers = ["EVENT ID", "PLATFORM", "SEQ", "KIND", "ATTEMPTS", "DEAD AT", "LAST ERROR"]
    click.echo(table(headers, rows))


@click.command("retry-deadletter")
@click.argument("event_id")
@with_appcontext
def retry_deadletter(event_id: str) -> None:
    """Queue one dead letter again at the end of its platform's stream, with the same event id."""
    with hub_of().db.write() as session:
        event = requeue_dead(session, event_id)
        seq = event.seq if event is not None else None
    if seq is None:
        raise click.ClickException(f"no dead letter {event_id!r}")
    click.echo(f"dead letter {event_id} queued again as seq {seq}")


@click.command("retry-deadletters")
@click.option("--platform", required=True, help="The platform whose dead letters to retry.")
@with_appcontext
def retry_deadletters(platform: str) -> None:
    """Queue every dead letter of one platform again, in their original order, same event ids."""
    with hub_of().db.write() as session:
        target = platform_by_name(session, platform)
        if target is None:
            raise click.ClickException(f"unknown platform {platform!r}")
        ids = requeue_platform_dead_letters(session, target.id)
        name = target.name
    click.echo(f"{len(ids)} dead letter(s) of {name} queued again")


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO time like 2025-01-31T14:05: {value!r}") from None


@click.command("replay")
@click.option("--platform", required=True, help="The platform to send its past events again.")
@click.option("--from-seq", type=click.IntRange(min=1), help="Only events from this seq on.")
@click.option("--room", metavar="PLATFORM:ID", help="Only this room's room and message events.")
@click.option(
    "--since",
    metavar="ISO-TIME",
    callback=_iso_time,
    help="Only events first queued at or after this time (UTC unless it has an offset).",
)
@click.option("--yes", is_flag=True, help="Replay a whole stream without asking.")
@with_appcontext
def replay(
    platform: str, from_seq: int | None, room: str | None, since: datetime | None, yes: bool
) -> None:
    """Send a platform again events it was already delivered, at the end of its stream.

    The copies go out in their original order after whatever is queued now, each with a NEW
    webhook-id (a platform that drops duplicates by webhook-id would drop them otherwise) and
    the original payload, message ids included. Without any filter the whole delivered stream
    is replayed, after a confirmation.
    """
    if from_seq is None and room is None and since is None and not yes:
        click.confirm(f"Replay every event ever delivered to {platform}?", abort=True)
    try:
        with hub_of().db.write() as session:
            count = replay_stream(session, platform, from_seq, room, since)
    except (NotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{count} event(s) queued again for {platform}")


COMMANDS = [deadletters, retry_deadletter, retry_deadletters, replay]
