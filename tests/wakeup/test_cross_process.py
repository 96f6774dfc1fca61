"""What lets several hub processes share one database: the stream watcher and SQLite's lock."""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import websocket

from hub.db import Database
from hub.db import sqlite as hub_db
from hub.models import Platform
from hub.wakeup.datagram import WakeSocket, wake_folder
from tests.support.hub_process import HubProcess
from tests.support.loopback_platform import wait_for
from tests.support.websockets import close_code


def test_the_watcher_sees_the_streams_another_process_added_events_to(platforms, make_hub) -> None:
    a, b, c = platforms("A"), platforms("B"), platforms("C")
    writer = make_hub(a, b, c, HUB_DELIVERY=False)
    # Another process on the same database; its watcher thread off, the test looks itself.
    reader = make_hub(a, b, c, HUB_DELIVERY=False, HUB_WAKE_INTERVAL=0)
    watcher = reader.hub.wakeup.watcher
    assert watcher.check() == set()  # the first look only learns where the streams are
    woken: list[set[int]] = []
    watcher.wake = lambda news, _moves: woken.append(news)

    assert writer.post(a, "/user", {"id": 1, "name": "alice"}).status_code == 201

    with reader.hub.db.read() as session:
        ids = dict(session.execute(sa.select(Platform.name, Platform.id)).all())
    assert watcher.check() == {ids["B"], ids["C"]}  # the user is forwarded to B and C
    assert woken == [{ids["B"], ids["C"]}]
    assert watcher.check() == set()  # nothing new since


def _waiting_in(thread: threading.Thread, function: str) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'lock.sqlite3'}")
    with db.write() as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    yield db, tmp_path / "lock.sqlite3"
    db.dispose()


def _other_process_lock(path) -> sqlite3.Connection:
    """Hold SQLite's write lock as another process would (its own connection)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def _count(db: Database) -> int:
    with db.read() as session:
        return session.execute(sa.text("SELECT count(*) FROM t")).scalar_one()


def test_a_sqlite_write_waits_for_the_lock_held_elsewhere_then_commits(sqlite_db) -> None:
    db, path = sqlite_db
    other = _other_process_lock(path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with db.write() as session:
                session.execute(sa.text("INSERT INTO t VALUES (1)"))
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_for(lambda: _waiting_in(writer, "begin_immediate"), timeout=5)
        assert _count(db) == 0
    finally:
        other.rollback()
        other.close()
    writer.join(5)
    assert not writer.is_alive() and errors == []
    assert _count(db) == 1


def test_a_sqlite_write_gives_up_after_the_lock_timeout_and_writes_nothing(
    sqlite_db, monkeypatch
) -> None:
    db, path = sqlite_db
    monkeypatch.setattr(hub_db, "LOCK_TIMEOUT_SECONDS", 0.2)
    other = _other_process_lock(path)
    try:
        with pytest.raises(sa.exc.OperationalError, match="locked"), db.write() as session:
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        other.rollback()
        other.close()
    assert _count(db) == 0


def test_a_long_poll_is_woken_by_an_event_another_process_committed(
    platforms, make_hub, database_url, tmp_path
) -> None:
    """The poll waits in a real server process; the event comes from another hub on the same
    database. The safety poll and the re-checks are set to an hour: an answer within the
    poll's 20 s is the wake-up's (NOTIFY on PostgreSQL, the datagram on SQLite)."""
    a = platforms("A")
    entries = [a.registry_entry(), {"name": "P", "token": "token-P", "transport": "poll"}]
    server = _hub_process(tmp_path, database_url, entries, **NO_SAFETY_POLL)
    server.start()
    try:
        answered: dict[str, Any] = {}

        def poll() -> None:
            body = {"last_message": None, "timeout": 20}
            answered["body"] = server.post("token-P", "/bus", body).json()

        poller = threading.Thread(target=poll)
        poller.start()
        other = make_hub(entries=entries, HUB_DELIVERY=False)  # the other process
        wait_for(lambda: _waiting_polls(other) == 1, timeout=10, message="the poll waits")
        assert other.post(a, "/user", {"id": 1, "name": "alice"}).status_code == 201
        poller.join(25)
        assert [m["type"] for m in answered["body"]["messages"]] == ["user"]
    finally:
        server.stop()


def test_a_socket_in_another_process_takes_over_at_once(
    platforms, make_hub, serve, database_url, tmp_path
) -> None:
    """W1 connects to a real hub process, then to another hub on the same database. Leases are
    renewed every 200 s and the safety poll is off: the first socket closed within its 10 s
    timeout is the wake-up's doing (the takeover's commit tells the process at once)."""
    a = platforms("A")
    entries = [a.registry_entry(), {"name": "W1", "token": "token-W1", "transport": "websocket"}]
    other = make_hub(entries=entries, HUB_LEASE_SECONDS=600, HUB_WAKE_INTERVAL=3600)
    url = serve(other.app).replace("http://", "ws://") + "/ws"
    auth = ["Authorization: Bearer token-W1"]
    server = _hub_process(
        tmp_path, database_url, entries, HUB_LEASE_SECONDS="600", **NO_SAFETY_POLL
    ).start()
    try:
        first = websocket.create_connection(
            server.url.replace("http://", "ws://") + "/ws", timeout=10, header=auth
        )
        wait_for(lambda: _lease_owner(other, "W1") is not None, message="the first socket's lease")
        second = websocket.create_connection(url, timeout=10, header=auth)
        # The hub may push W1's user events first; the close then comes within the timeout.
        assert close_code(first) == (4000, "replaced by a newer connection")
        owner = _lease_owner(other, "W1")
        assert owner is not None and owner.startswith(other.hub.owner)
        second.close()
    finally:
        server.stop()


def test_a_direct_message_reaches_a_socket_held_by_another_process(
    platforms, make_hub, database_url, tmp_path
) -> None:
    """W1's socket is open on a real hub process; the direct message is posted to another
    process of the same hub (the one gunicorn worker of two that did not get the socket), on
    SQLite through its wake socket, on PostgreSQL through NOTIFY."""
    a = platforms("A")
    entries = [
        a.registry_entry(),
        {"name": "W1", "token": "token-W1", "transport": "websocket"},
        {"name": "W2", "token": "token-W2", "transport": "websocket"},
    ]
    other = make_hub(entries=entries)
    for token in ("token-A", "token-W1", "token-W2"):
        other.as_platform(token, "POST", "/user", json={"id": 1, "name": token})
    room = {
        "id": 1,
        "name": "r",
        "type": "private",
        "users": [{"A": [1]}, {"W1": [1]}, {"W2": [1]}],
    }
    assert other.post(a, "/room", room).status_code == 201
    server = _hub_process(tmp_path, database_url, entries).start()
    try:
        ws = websocket.create_connection(
            server.url.replace("http://", "ws://") + "/ws",
            timeout=10,
            header=["Authorization: Bearer token-W1"],
        )
        wait_for(lambda: _lease_owner(other, "W1") is not None, message="W1's socket's lease")
        body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "typing..."}
        answer = other.post(a, "/message", {**body, "direct": True})
        assert answer.status_code == 202, answer.json
        assert (answer.json["receivers"], answer.json["reached"]) == (2, 1)  # W2 is offline
        while True:  # W1's stream (users, room) comes first, as stored events
            frame = json.loads(ws.recv())
            if frame.get("direct"):
                break
        assert frame["seq"] is None and frame["data"]["text"] == "typing..."
        ws.close()
    finally:
        server.stop()


# Only the wake-up can wake a consumer within a test: the safety poll and re-checks wait an hour.
NO_SAFETY_POLL = {"HUB_WAKE_INTERVAL": "3600", "HUB_DELIVERY_POLL_INTERVAL": "3600"}


def _hub_process(
    tmp_path: Path, database_url: str, entries: list[dict], **settings: str
) -> HubProcess:
    """A hub process (not started) on the test's database with these platforms registered."""
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps(entries))
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_PLATFORMS_FILE": str(registry),
        "HUB_SCHEDULER": "off",
        **settings,
    }
    return HubProcess(env, log_path=tmp_path / "hub.log")


def _lease_owner(hub: Any, name: str) -> str | None:
    with hub.hub.db.read() as session:
        return session.execute(
            sa.select(Platform.lease_owner).where(Platform.name == name)
        ).scalar_one()


def _waiting_polls(hub: Any) -> int:
    """P's one poll marks P up just before it waits: its last "up" time is set."""
    with hub.hub.db.read() as session:
        return session.execute(
            sa.select(sa.func.count())
            .select_from(Platform)
            .where(Platform.name == "P", Platform.last_success_at.is_not(None))
        ).scalar_one()


def test_a_wake_datagram_reaches_the_other_process_inbox(tmp_path) -> None:
    folder = tmp_path / "wake"
    woken: list[tuple[set[int], set[int]]] = []
    inbox = WakeSocket(folder, lambda news, moves: woken.append((news, moves)))
    sender = WakeSocket(folder, lambda *_: None)  # a process that only commits (the CLI)
    assert inbox.start()
    try:
        sender.send({3, 1}, {2})  # news on streams 1 and 3, stream 2 changed owner
        wait_for(lambda: woken == [({1, 3}, {2})], timeout=5, message="the inbox was woken")
    finally:
        inbox.stop()
        sender.stop()
    assert not folder.exists()  # the last inbox leaves no file behind


def test_a_dead_process_socket_is_removed_and_the_others_still_woken(tmp_path) -> None:
    folder = tmp_path / "wake"
    folder.mkdir()
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    crashed.bind(str(folder / "1-dead.sock"))
    crashed.close()  # its file stays, as after a SIGKILL
    woken: list[set[int]] = []
    inbox = WakeSocket(folder, lambda news, _moves: woken.append(news))
    sender = WakeSocket(folder, lambda *_: None)
    assert inbox.start()
    try:
        sender.send({7})
        wait_for(lambda: woken == [{7}], timeout=5, message="the live inbox was woken")
        assert not (folder / "1-dead.sock").exists()
    finally:
        inbox.stop()
        sender.stop()


def test_direct_frames_go_to_the_inbox_a_lease_names_and_only_there(tmp_path) -> None:
    folder = tmp_path / "wake"
    folder.mkdir()
    got: list[tuple[int, dict]] = []
    woken: list[set[int]] = []
    inbox = WakeSocket(
        folder,
        lambda news, _moves: woken.append(news),
        owner="host:4242:abcd1234",
        direct=lambda p, f: got.append((p, f)),
    )
    sender = WakeSocket(folder, lambda *_: None, owner="host:4343:ef567890")
    assert inbox.start() and inbox.path.name == "4242-abcd1234.sock"
    try:
        frame = {"seq": None, "event": "message", "direct": True, "data": {"text": "hi"}}
        assert sender.send_direct("host:4242:abcd1234/ws-0a1b2c", {5: frame})
        wait_for(lambda: got == [(5, frame)], timeout=5, message="the frame was relayed")
        sender.send({9})  # a marker after it: once it has woken the inbox, so would the frame
        wait_for(lambda: woken != [], timeout=5, message="the marker")
        assert woken == [{9}]  # a direct datagram wakes no stream
        assert not sender.send_direct("host:9999:00000000/ws-0a1b2c", {5: frame})  # no inbox
        assert not sender.send_direct("not an owner", {5: frame})
        huge = {**frame, "data": {"text": "x" * 300_000}}
        assert not sender.send_direct("host:4242:abcd1234/ws-0a1b2c", {5: huge})
    finally:
        inbox.stop()
        sender.stop()


def test_the_wake_folder_is_beside_the_database_unless_its_path_is_too_long(tmp_path) -> None:
    assert wake_folder(str(tmp_path / "hub.sqlite3")) == tmp_path / "hub.sqlite3.wake"
    deep = tmp_path / ("d" * 80) / "hub.sqlite3"
    folder = wake_folder(str(deep))
    assert folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("hub-wake-")
    assert folder == wake_folder(str(deep))  # every process of that file finds the same one
