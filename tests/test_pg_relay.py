"""Direct frames between hub processes on PostgreSQL: NOTIFY on a channel per process.

Real PostgreSQL (``HUB_TEST_POSTGRES_URL``; CI sets it), two schemas standing for two hubs
sharing one server. The end-to-end case (a real hub process holding the socket) is
``test_a_direct_message_reaches_a_socket_held_by_another_process`` in test_cross_process.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from hub.wakeup import notify as pg_relay
from hub.wakeup.notify import MAX_PAYLOAD, PgRelay
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


class Receiver:
    """A relay listening as one process, with what its sockets got."""

    def __init__(self, engine: sa.Engine, owner: str) -> None:
        self.got: list[tuple[int, dict[str, Any]]] = []
        self.relay = PgRelay(engine, owner, direct=lambda pid, frame: self._take(pid, frame))

    def _take(self, platform_id: int, frame: dict[str, Any]) -> bool:
        self.got.append((platform_id, frame))
        return True


def test_frames_reach_the_process_a_lease_names_and_only_it(two_schemas) -> None:
    engine, _ = two_schemas
    holder = Receiver(engine, "host-a:4242:abcd1234")
    bystander = Receiver(engine, "host-b:4242:abcd1234")
    sender = PgRelay(engine, "host-c:7:00000000", direct=lambda *_: False)
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
    sender = PgRelay(ours, "host:2:bbbbbbbb", direct=lambda *_: False)
    try:
        assert here.relay.start() and there.relay.start()
        assert sender.channel(owner) != PgRelay(theirs, "x:1:y", direct=lambda *_: False).channel(
            owner
        )
        assert sender.send_direct(owner, {1: FRAME})
        wait_for(lambda: here.got != [], message="the frame in our hub")
        assert sender.send_direct(owner, {2: FRAME})
        wait_for(lambda: len(here.got) == 2, message="the second frame in our hub")
        assert there.got == []
    finally:
        for relay in (here.relay, there.relay, sender):
            relay.stop()


def test_frames_too_large_for_one_notification_are_not_sent(two_schemas) -> None:
    engine, _ = two_schemas
    holder = Receiver(engine, "host:3:cccccccc")
    sender = PgRelay(engine, "host:4:dddddddd", direct=lambda *_: False)
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
    monkeypatch.setattr(pg_relay, "WAIT_SECONDS", 60.0)
    relay = Receiver(engine, "host:5:eeeeeeee").relay
    assert relay.start()
    started = time.monotonic()
    relay.stop()
    assert relay._thread is not None and not relay._thread.is_alive()
    assert time.monotonic() - started < 30  # a minute without the wake-up
