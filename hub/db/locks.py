"""Advisory locks that order transactions against each other where rows alone cannot."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

# Registering a platform sends it everything that exists; on PostgreSQL (READ COMMITTED) a user
# or room committed meanwhile by another transaction would be seen by neither side. Enqueuers
# share this lock; registration takes it alone. SQLite serializes writers anyway.
DIRECTORY_LOCK = 727_364_002


def lock_directory(session: Session | Connection, exclusive: bool = False) -> None:
    """Order this transaction against platform registrations (PostgreSQL only)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        session.execute(text(f"SELECT {function}(:key)"), {"key": DIRECTORY_LOCK})
