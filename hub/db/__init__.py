"""The database: engines and transactions (SQLite in WAL mode, or PostgreSQL).

A write transaction collects what other consumers must hear of once it commits: the platforms
whose streams got events (``news``) and those whose stream changed owner (``lease_moves``).
``Database.on_commit`` is called with both after the commit (the wake-up, ``hub/wakeup``);
on PostgreSQL ``Database.before_commit`` runs inside the transaction, so that a NOTIFY is sent
by the commit itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from hub.db.sqlite import sqlite_engine, sqlite_file

NEWS_KEY = "hub.news"  # session.info: platform ids whose streams got events
LEASES_KEY = "hub.lease_moves"  # session.info: platform ids whose stream changed owner

Changes = tuple[set[int], set[int]]  # (news, lease moves)


def news(session: Session) -> set[int]:
    """The platforms whose streams this transaction gave events (add to it)."""
    return session.info.setdefault(NEWS_KEY, set())


def lease_moves(session: Session) -> set[int]:
    """The platforms whose stream this transaction gave another owner (add to it)."""
    return session.info.setdefault(LEASES_KEY, set())


class Database:
    """The hub's engines and session factories; ``write()`` and ``read()`` are transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.sqlite_file = sqlite_file(url) if self.is_sqlite else None
        if self.is_sqlite:
            self.engine = sqlite_engine(url, immediate=True)
            self.read_engine = sqlite_engine(url, immediate=False)
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
        self._write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite allows one writer; threads of this process queue here rather than in SQLite's
        # busy handler, which sleeps in steps of up to 100 ms before it retries the lock.
        self._write_lock = threading.Lock() if self.is_sqlite else nullcontext()
        # Run inside a write transaction that has changes, just before its commit.
        self.before_commit: Callable[[Session, Changes], None] | None = None
        # Called with a write transaction's changes once it has committed.
        self.on_commit: Callable[[Changes], None] | None = None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Open a write transaction, committed when the block ends without error."""
        with self._write_lock, self._write_sessions() as session, session.begin():
            yield session
            changes = (
                session.info.pop(NEWS_KEY, set()),
                session.info.pop(LEASES_KEY, set()),
            )
            if any(changes) and self.before_commit is not None:
                self.before_commit(session, changes)
        if any(changes) and self.on_commit is not None:
            self.on_commit(changes)

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
