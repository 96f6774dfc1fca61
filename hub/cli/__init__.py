"""Command line: ``flask --app wsgi db upgrade`` and ``flask --app wsgi hub ...``.

Each module of this package holds the commands of one role and lists them in ``COMMANDS``.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from hub.cli import deliver, demo, platforms, streams, sync
from hub.cli.output import hub_of
from hub.db import migrate


@click.group("db", cls=AppGroup, help="Database schema commands.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Bring the database up to the current schema (Alembic).")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    migrate.upgrade(hub_of().db, revision)
    click.echo(f"database at {revision}: {hub_of().db.engine.url.render_as_string()}")


@click.group(
    "hub",
    cls=AppGroup,
    help="Operate the chat-integrator hub: platforms, queues, dead letters, replay, user sync."
    " These commands work on the hub's database; a running hub picks their changes up within"
    " a few seconds.",
)
def hub_group() -> None:
    pass


for module in (platforms, streams, sync, deliver, demo):
    for command in module.COMMANDS:
        hub_group.add_command(command)


def register(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(hub_group)
