"""Schema migrations: HEAD names Alembic's head, and an up-to-date schema skips Alembic."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.script import ScriptDirectory

from hub import migrate
from hub.db import Database
from tests.hub_process import ROOT

_STARTS = (
    "import sys\n"
    "from hub import create_app\n"
    "create_app({'HUB_LOAD_PLATFORMS': False, 'HUB_SCHEDULER': False, 'HUB_DELIVERY': False})\n"
    "print('alembic loaded' if 'alembic' in sys.modules else 'alembic not loaded')\n"
)


def test_head_is_the_newest_migration() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert scripts.get_current_head() == migrate.HEAD


def test_a_hub_starting_on_an_up_to_date_schema_does_not_load_alembic(database_url) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": database_url, "FLASK_RUN_FROM_CLI": "true"}

    def start() -> str:
        run = subprocess.run(
            [sys.executable, "-c", _STARTS], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert start() == "alembic loaded"  # an empty database: the schema is created
    db = Database(database_url)
    try:
        assert migrate.current_revision(db) == migrate.HEAD
    finally:
        db.dispose()
    assert start() == "alembic not loaded"
