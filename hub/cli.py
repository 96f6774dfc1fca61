"""Command line: ``flask --app wsgi db upgrade`` and ``flask --app wsgi hub ...``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from hub import migrate, registry


def _hub():  # type: ignore[no-untyped-def]
    return current_app.extensions["hub"]


@click.group("db", cls=AppGroup, help="Database schema commands.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Bring the database up to the current schema (Alembic).")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    migrate.upgrade(_hub().db, revision)
    click.echo(f"database at {revision}: {_hub().db.engine.url.render_as_string()}")


@click.group("hub", cls=AppGroup, help="Operate the chat-integrator hub.")
def hub_group() -> None:
    pass


@hub_group.command("load-platforms", help="Upsert every entry of a platforms.json file by name.")
@click.option(
    "--file",
    "path",
    default=None,
    help="Registry file (default: HUB_PLATFORMS_FILE, i.e. platforms.json).",
)
def load_platforms(path: str | None) -> None:
    path = path or current_app.config["HUB_PLATFORMS_FILE"]
    try:
        names = registry.load_file(_hub().db, path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"loaded {len(names)} platform(s) from {path}: {', '.join(names) or '-'}")


def register(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(hub_group)
