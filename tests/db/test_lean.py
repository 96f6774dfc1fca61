"""Lean statements give what SQLAlchemy's own execution gives, on both databases.

Each statement the hot path runs on a bare cursor (``hub/db/lean.py``) is run here both ways:
reads must return the same rows, writes must store rows that the ORM reads back as it reads
the rows SQLAlchemy itself writes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, insert, select

from hub.db import Database, migrate
from hub.db.lean import LeanStatement, as_datetime, execute_many, fetch, stored_time
from hub.models import EventKind, EventStatus, OutboxEvent, Platform, Room, RoomMember, User, utcnow
from hub.outbox import enqueue, reader
from hub.routing import messages


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    with database.write() as session:
        a = Platform(name="A", name_key="a", token="ta", endpoint="http://a/")
        b = Platform(name="B", name_key="b", token="tb", endpoint="http://b/")
        session.add_all([a, b])
        session.flush()
        alice = User(platform_id=a.id, local_id="1", local_id_is_int=True, name="alice")
        bob = User(platform_id=b.id, local_id="x", local_id_is_int=False, name="bob")
        room = Room(platform_id=a.id, local_id="10", local_id_is_int=True, name="r", type="private")
        session.add_all([alice, bob, room])
        session.flush()
        session.add_all([RoomMember(room_id=room.id, user_id=u.id) for u in (alice, bob)])
    yield database
    database.dispose()


def _both(db: Database, statement: LeanStatement, values: dict) -> tuple[list, list]:
    """The rows of the statement run lean and run by SQLAlchemy, each in a rolled-back
    transaction."""
    results = []
    for lean in (True, False):
        with db.engine.connect() as connection, connection.begin() as transaction:
            if lean:
                rows = fetch(connection, statement, values)
            else:
                rows = [tuple(r) for r in connection.execute(statement.statement, values)]
            results.append(rows)
            transaction.rollback()
    return results[0], results[1]


def test_the_room_with_its_members_reads_the_same_rows(db: Database) -> None:
    lean, core = _both(db, messages._ROOM_WITH_MEMBERS, {"name_key": "a", "local": "10"})
    assert len(lean) == 2 and lean == core


def test_the_next_seqs_are_the_same(db: Database) -> None:
    one = {"platform_id": 1, "count": 3}
    assert _both(db, enqueue._NEXT_SEQ, one) == ([(3,)], [(3,)])
    each = {"id0": 1, "id1": 2}
    lean, core = _both(db, enqueue._next_seq_each(2), each)
    assert sorted(lean) == sorted(core) == [(1, 1), (2, 1)]


def _insert_event(connection: Connection, lean: bool, seq: int) -> None:
    now = utcnow()
    values = {
        "event_id": f"evt_{seq}",
        "platform_id": 1,
        "seq": seq,
        "kind": EventKind.MESSAGE,
        "payload": '{"text":"hi"}',
        "message_id": None,
        "status": EventStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "queued_at": now,
    }
    if not lean:
        connection.execute(insert(OutboxEvent.__table__), values)
        return
    stored = stored_time(connection.dialect, now)
    raw = {**values, "kind": "message", "status": "pending", "created_at": stored}
    execute_many(connection, enqueue._INSERT_EVENT, [{**raw, "queued_at": stored}])


def test_a_lean_event_row_reads_back_as_sqlalchemy_writes_it(db: Database) -> None:
    with db.engine.begin() as connection:
        _insert_event(connection, lean=True, seq=1)
        _insert_event(connection, lean=False, seq=2)
    with db.read() as session:
        rows = session.execute(select(OutboxEvent).order_by(OutboxEvent.seq)).scalars().all()
        shown = [(e.kind, e.status, e.payload, type(e.created_at), e.queued_at.year) for e in rows]
    assert shown[0] == shown[1] == (EventKind.MESSAGE, EventStatus.PENDING, '{"text":"hi"}',
                                    type(utcnow()), utcnow().year)  # fmt: skip


def test_the_stream_reader_reads_what_sqlalchemy_reads(db: Database) -> None:
    with db.engine.begin() as connection:
        for seq in (1, 2, 3):
            _insert_event(connection, lean=False, seq=seq)
    values = {"platform_id": 1, "status": "pending", "after": 1, "limit": 10}
    lean, core = _both(db, reader._PENDING_AFTER, values)
    normalised = [(*row[:5], as_datetime(row[5]), row[6]) for row in lean]
    core_rows = [(*row[:3], str(row[3]), *row[4:]) for row in core]  # the kind, as text
    assert [row[2] for row in lean] == [2, 3]
    assert normalised == core_rows


def test_a_statement_that_needs_a_python_side_default_is_refused(db: Database) -> None:
    """``updated_at`` has an ``onupdate``: only SQLAlchemy's execution would fill it."""
    from sqlalchemy import update

    table = Platform.__table__
    statement = LeanStatement(update(table).values(name="x"))
    with pytest.raises(ValueError, match="updated_at"):
        statement.compiled(db.engine.dialect)
