"""Engine and sessions: SQLite (WAL, busy timeout, BEGIN IMMEDIATE for writes) or PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

# session.info key under which a transaction lists the platforms whose streams got events.
WAKE_KEY = "hub.wake_platforms"

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


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
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


class Database:
    """The hub's engines and session factories; ``write()`` and ``read()`` are transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.sqlite_file = sqlite_file(url) if self.is_sqlite else None
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
        self._write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite allows one writer; threads of this process queue here rather than in SQLite's
        # busy handler, which sleeps in steps of up to 100 ms before it retries the lock.
        self._write_lock = threading.Lock() if self.is_sqlite else nullcontext()
        # Called with the platform ids of WAKE_KEY once their transaction has committed.
        self.on_wake: Callable[[set[int]], None] | None = None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Open a write transaction, committed when the block ends without error."""
        with self._write_lock, self._write_sessions() as session:
            with session.begin():
                yield session
            woken = session.info.pop(WAKE_KEY, None)
        if woken and self.on_wake is not None:
            self.on_wake(woken)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only transaction (on SQLite it does not take the write lock)."""
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
