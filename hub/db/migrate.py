"""Bring the database to the current schema with Alembic, safely from several processes.

A database already at ``HEAD`` is left alone without loading Alembic (and Mako with it): every
hub process checks the schema at start, and Alembic would stay in each one's memory (~10 MB).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from hub.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions (a test checks that it is Alembic's head).
HEAD = "0003"
_PG_LOCK_KEY = 727_364_001  # arbitrary, fixed: one migrator at a time on PostgreSQL


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(db: Database) -> str | None:
    """The schema's Alembic revision; None for a database without one (empty, or new)."""
    try:
        with db.read() as session:
            return session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet
        return None


@contextmanager
def one_migrator(db: Database, connection: Connection) -> Iterator[None]:
    """Hold the lock that lets one process at a time migrate the database.

    Hub processes starting together (gunicorn workers) must not migrate side by side: on
    SQLite Alembic commits each revision on its own, so a second process could read the
    revision between two of the first one's steps and run a step again."""
    if not db.is_sqlite:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            connection.commit()
        return
    if db.sqlite_file is None:  # in memory: no other process can see it
        yield
        return
    path = db.sqlite_file.with_name(db.sqlite_file.name + ".migrate-lock")
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (an empty database gets the whole schema)."""
    if revision in ("head", HEAD) and current_revision(db) == HEAD:
        return
    from alembic import command

    with db.engine.connect() as connection, one_migrator(db, connection):
        # Alembic reads the revision again under the lock: a process that waited finds the
        # schema the other one made and has nothing to do.
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
