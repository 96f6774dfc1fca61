"""Schema migrations: HEAD names Alembic's head, and an up-to-date schema skips Alembic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from hub.db import Database, migrate
from hub.db.sqlite import sqlite_file
from tests.support.hub_process import ROOT

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
    env = {**os.environ, "HUB_DATABASE_URL": database_url}

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


# Each child waits 50 ms after every commit, so that on SQLite (Alembic commits revision by
# revision) another process would find the schema half-way if nothing kept them apart.
_SLOW_MIGRATOR = (
    "import sys, time\n"
    "from sqlalchemy.engine import Connection, Transaction\n"
    "def slowed(commit):\n"
    "    def slow_commit(self):\n"
    "        commit(self)\n"
    "        time.sleep(0.05)\n"
    "    return slow_commit\n"
    "Connection.commit = slowed(Connection.commit)\n"
    "Transaction.commit = slowed(Transaction.commit)\n"
    "from hub.db import Database\n"
    "from hub.db.migrate import upgrade\n"
    "upgrade(Database(sys.argv[1]))\n"
)


def test_processes_starting_together_migrate_one_at_a_time(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _SLOW_MIGRATOR, url],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    failures = [child.communicate(timeout=60)[1] for child in children if child.wait(60) != 0]
    assert failures == []
    assert (tmp_path / "hub.sqlite3.migrate-lock").exists()  # the lock they took turns on
    db = Database(url)
    try:
        assert migrate.current_revision(db) == migrate.HEAD
    finally:
        db.dispose()


def test_an_in_memory_database_has_no_file_to_lock_beside() -> None:
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite:////x/hub.sqlite3") == Path("/x/hub.sqlite3")
