"""The PostgreSQL wake-up: changes on the hub's channel, direct frames on a channel per process.

Real PostgreSQL (``HUB_TEST_POSTGRES_URL``; CI sets it), two schemas standing for two hubs
sharing one server. The end-to-end case (a real hub process holding the socket) is
``test_a_direct_message_reaches_a_socket_held_by_another_process`` in test_cross_process.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hub.wakeup import notify
from hub.wakeup.notify import MAX_PAYLOAD, PgWakeup
from tests.conftest import postgres_url
from tests.support.loopback_platform import wait_for

FRAME = {"seq": None, "event": "message", "direct": True, "data": {"text": "typing..."}}


@pytest.fixture
def two_schemas() -> Iterator[list[sa.Engine]]:
    """Engines on two fresh schemas of the test database (two hubs on one server)."""
    base = postgres_url()
    if base is None:
        pytest.skip("no PostgreSQL: set HUB_TEST_POSTGRES_URL (CI sets it)")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    separator = "&" if "?" in base else "?"
    with admin.connect() as connection:
        for schema in schemas:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engines = [
        sa.create_engine(f"{base}{separator}options=-csearch_path%3D{schema}") for schema in schemas
    ]
    try:
        yield engines
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sender(engine: sa.Engine, owner: str) -> PgWakeup:
    return PgWakeup(engine, owner, wake=lambda *_: None, direct=lambda *_: False)


class Receiver:
    """A wake-up listening as one process, with what its sockets and consumers got."""

    def __init__(self, engine: sa.Engine, owner: str) -> None:
        self.got: list[tuple[int, dict[str, Any]]] = []
        self.changes: list[tuple[set[int], set[int]]] = []
        self.relay = PgWakeup(
            engine,
            owner,
            wake=lambda news, moves: self.changes.append((news, moves)),
            direct=lambda pid, frame: self._take(pid, frame),
        )

    def _take(self, platform_id: int, frame: dict[str, Any]) -> bool:
        self.got.append((platform_id, frame))
        return True


def test_frames_reach_the_process_a_lease_names_and_only_it(two_schemas) -> None:
    engine, _ = two_schemas
    holder = Receiver(engine, "host-a:4242:abcd1234")
    bystander = Receiver(engine, "host-b:4242:abcd1234")
    sender = _sender(engine, "host-c:7:00000000")
    try:
        assert holder.relay.start() and bystander.relay.start()
        # The lease of a socket of the holder names its process, then the socket.
        assert sender.send_direct("host-a:4242:abcd1234/ws-0a1b2c", {5: FRAME, 6: FRAME})
        wait_for(lambda: len(holder.got) == 2, message="the frames relayed to the holder")
        assert sorted(holder.got, key=lambda got: got[0]) == [(5, FRAME), (6, FRAME)]
        # The bystander listens on its own channel: a frame for it proves it heard nothing else.
        assert sender.send_direct("host-b:4242:abcd1234/ws-ffffff", {7: FRAME})
        wait_for(lambda: bystander.got != [], message="the bystander's own frame")
        assert bystander.got == [(7, FRAME)]
    finally:
        for relay in (holder.relay, bystander.relay, sender):
            relay.stop()


def test_another_hub_on_the_same_server_hears_nothing(two_schemas) -> None:
    """Same owner id in two schemas (two hubs): the channel names differ."""
    ours, theirs = two_schemas
    owner = "host:1:aaaaaaaa"
    here, there = Receiver(ours, owner), Receiver(theirs, owner)
    sender = _sender(ours, "host:2:bbbbbbbb")
    try:
        assert here.relay.start() and there.relay.start()
        assert sender.channel(owner) != _sender(theirs, "x:1:y").channel(owner)
        assert sender.send_direct(owner, {1: FRAME})
        wait_for(lambda: here.got != [], message="the frame in our hub")
        assert sender.send_direct(owner, {2: FRAME})
        wait_for(lambda: len(here.got) == 2, message="the second frame in our hub")
        # A marker sent in their hub after ours: once it has arrived, so would have ours.
        assert _sender(theirs, "host:3:cccccccc").send_direct(owner, {3: FRAME})
        wait_for(lambda: there.got != [], message="the marker in their hub")
        assert there.got == [(3, FRAME)]
    finally:
        for relay in (here.relay, there.relay, sender):
            relay.stop()


def test_frames_too_large_for_one_notification_are_not_sent(two_schemas) -> None:
    engine, _ = two_schemas
    holder = Receiver(engine, "host:3:cccccccc")
    sender = _sender(engine, "host:4:dddddddd")
    try:
        assert holder.relay.start()
        huge = {**FRAME, "data": {"text": "x" * MAX_PAYLOAD}}
        assert not sender.send_direct("host:3:cccccccc/ws-1", {1: huge})
        assert sender.send_direct("host:3:cccccccc/ws-1", {2: FRAME})  # a marker after it
        wait_for(lambda: holder.got != [], message="the marker frame")
        assert holder.got == [(2, FRAME)]
    finally:
        holder.relay.stop()
        sender.stop()


def test_stopping_wakes_the_listener_rather_than_waiting_out_its_timeout(
    two_schemas, monkeypatch
) -> None:
    engine, _ = two_schemas
    # Without the wake-up the listener would wait an hour; stop() waits for it STOP_SECONDS.
    monkeypatch.setattr(notify, "WAIT_SECONDS", 3600.0)
    relay = Receiver(engine, "host:5:eeeeeeee").relay
    assert relay.start()
    relay.stop()
    assert relay._thread is not None and not relay._thread.is_alive()


def _commit_changes(engine: sa.Engine, sender: PgWakeup, news: set[int], moves: set[int]) -> None:
    with Session(engine) as session, session.begin():
        sender.notify_changes(session, news, moves)


def test_a_committed_change_wakes_every_other_process_and_a_rolled_back_one_none(
    two_schemas,
) -> None:
    engine, _ = two_schemas
    listener = Receiver(engine, "host:6:ffffffff")
    sender = _sender(engine, "host:7:11111111")
    try:
        assert listener.relay.start()
        with Session(engine) as session, session.begin():
            sender.notify_changes(session, {99}, set())
            session.rollback()  # never told: the transaction did not commit
        _commit_changes(engine, sender, {3, 4}, {4})
        wait_for(lambda: listener.changes != [], message="the committed change")
        assert listener.changes == [({3, 4}, {4})]
    finally:
        listener.relay.stop()
        sender.stop()


def test_a_process_does_not_hear_its_own_changes(two_schemas) -> None:
    """It woke its own consumers when it committed: hearing them again would wake them twice."""
    engine, _ = two_schemas
    owner = "host:8:22222222"
    listener = Receiver(engine, owner)
    other = _sender(engine, "host:9:33333333")
    try:
        assert listener.relay.start()
        _commit_changes(engine, listener.relay, {1}, set())  # its own
        _commit_changes(engine, other, {2}, set())  # a marker from another process
        wait_for(lambda: listener.changes != [], message="the other process's change")
        assert listener.changes == [({2}, set())]
    finally:
        listener.relay.stop()
        other.stop()


def test_a_change_too_large_to_list_asks_for_a_look_at_every_stream(two_schemas) -> None:
    engine, _ = two_schemas
    looked: list[bool] = []
    listener = PgWakeup(
        engine, "host:10:44444444", wake=lambda *_: None, direct=lambda *_: False,
        on_all=lambda: looked.append(True),
    )  # fmt: skip
    sender = _sender(engine, "host:11:55555555")
    try:
        assert listener.start()
        _commit_changes(engine, sender, set(range(100_000, 102_000)), set())
        wait_for(lambda: looked != [], message="the look at every stream")
    finally:
        listener.stop()
        sender.stop()
