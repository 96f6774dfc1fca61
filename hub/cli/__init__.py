"""Command line: ``flask --app hub db upgrade`` and ``flask --app hub hub ...``.

Each module of this package holds the commands of one role and lists them in ``COMMANDS``.
Commands load the app with ``--app hub``, which starts no thread; ``--app wsgi`` is the
server's entry point and starts the server's services, so the commands refuse it.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from hub.cli import deliver, demo, platforms, streams, sync
from hub.cli.output import hub_of
from hub.db import migrate


def _refuse_a_serving_app() -> None:
    if hub_of().serving:
        raise click.UsageError(
            "this app was loaded with the server's services running (--app wsgi);"
            " run commands with --app hub"
        )


@click.group("db", cls=AppGroup, help="Database schema commands.")
@with_appcontext
def db_group() -> None:
    _refuse_a_serving_app()


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
@with_appcontext
def hub_group() -> None:
    _refuse_a_serving_app()


for module in (platforms, streams, sync, deliver, demo):
    for command in module.COMMANDS:
        hub_group.add_command(command)


def register(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(hub_group)
