"""SQLite as the hub needs it: WAL, foreign keys, write transactions that lock first."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError

# How long a SQLite write waits for the write lock held by another process, and how often it
# tries again meanwhile. SQLite's own busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between
# tries, so a writer that loses a few times to a busy process waits tens of milliseconds for a
# lock held a millisecond at a time.
LOCK_TIMEOUT_SECONDS = 30.0
LOCK_RETRY_SECONDS = 0.0005


def default_sqlite_url(instance_path: str) -> str:
    """Return the URL of the default SQLite file under the instance folder."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'hub.sqlite3'}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database (no other process sees it)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


def begin_immediate(dbapi_connection: sqlite3.Connection) -> None:
    """Take SQLite's write lock, trying again every LOCK_RETRY_SECONDS while another holds it."""
    deadline = None
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + LOCK_TIMEOUT_SECONDS
            elif now >= deadline:
                raise
        time.sleep(LOCK_RETRY_SECONDS)


def sqlite_engine(url: str, *, immediate: bool) -> Engine:
    """An engine whose transactions begin with BEGIN IMMEDIATE (writes) or BEGIN (reads)."""
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # Readers wait in SQLite's busy handler (rarely needed in WAL mode); writers take the
        # lock in begin_immediate() and, once they hold it, never wait.
        cursor.execute(f"PRAGMA busy_timeout={0 if immediate else 30000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # A deferred BEGIN that reads and then writes fails with "database is locked" under
        # concurrency whatever the timeout; IMMEDIATE takes the write lock up front.
        if immediate:
            try:
                begin_immediate(connection.connection.dbapi_connection)
            except sqlite3.Error as exc:  # raised as SQLAlchemy raises the driver's errors
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        else:
            connection.exec_driver_sql("BEGIN")

    return engine
