"""Bring the database to the current schema with Alembic, safely from several processes."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from hub.db import Database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 727_364_001  # arbitrary, fixed: one migrator at a time on PostgreSQL


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (an empty database gets the whole schema)."""
    with db.engine.connect() as connection:
        if not db.is_sqlite:
            # Hub processes starting together must not both create the tables.
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            connection.commit()
        try:
            config = alembic_config(db.url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        finally:
            if not db.is_sqlite:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                connection.commit()
