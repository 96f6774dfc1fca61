"""Several hub processes on one database share the work without breaking order or duplicating."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import sqlalchemy as sa

from hub.models import EventStatus, OutboxEvent, Platform
from tests.support.hub_process import ROOT, HubProcess
from tests.support.loopback_platform import wait_for

pytestmark = pytest.mark.slow


def test_two_hub_processes_deliver_each_stream_once_and_in_order(
    platforms, database_url, tmp_path
) -> None:
    a, b, c = platforms("A"), platforms("B"), platforms("C")
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([p.registry_entry() for p in (a, b, c)]))
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_PLATFORMS_FILE": str(registry),
        "HUB_DELIVERY_POLL_INTERVAL": "0.1",
        "HUB_RETRY_BASE_DELAY": "0.05",
        "HUB_RETRY_MAX_DELAY": "0.3",
    }
    first = HubProcess(env, log_path=tmp_path / "hub-1.log").start()
    second = HubProcess(env, log_path=tmp_path / "hub-2.log").start()
    try:
        for platform, name in ((a, "alice"), (b, "bob"), (c, "carol")):
            assert first.post(platform.token, "/user", {"id": 1, "name": name}).status_code == 201
        room = {
            "id": 1,
            "name": "r",
            "type": "private",
            "users": [{"A": [1]}, {"B": [1]}, {"C": [1]}],
        }
        assert second.post(a.token, "/room", room).status_code == 201
        texts = [f"shared {i}" for i in range(40)]
        for i, text in enumerate(texts):
            hub = (first, second)[i % 2]
            body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": text}
            assert hub.post(a.token, "/message", body).status_code == 202
        for receiver in (b, c):
            wait_for(
                lambda r=receiver: len(r.acked("message")) == 40,
                timeout=20,
                message=f"{receiver.name} got the 40 messages",
            )
            assert [call.json["text"] for call in receiver.acked("message")] == texts
            assert receiver.duplicates() == []
            assert len(receiver.acked("room")) == 1
            assert len(receiver.acked("user")) == 2
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("woken_by", ["any", "socket"])
def test_a_delivery_process_beside_the_web_server_delivers_in_order_at_once(
    platforms, database_url, tmp_path, woken_by
) -> None:
    """The README's throughput layout: the web server with HUB_DELIVERY=off, `flask hub
    deliver` beside it. The workers' idle re-check and the retry delay are set to a minute,
    so events and a /ping that take effect within seconds reached the delivery process through
    the wake socket (SQLite) or the stream watcher (both; PostgreSQL has only the watcher).
    "socket" slows the watcher to a minute too: the socket alone must do it."""
    if woken_by == "socket" and not database_url.startswith("sqlite"):
        pytest.skip("wake sockets are for SQLite hubs (one machine)")
    a, b = platforms("A"), platforms("B")
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([p.registry_entry() for p in (a, b)]))
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_PLATFORMS_FILE": str(registry),
        "HUB_DELIVERY_POLL_INTERVAL": "60",
        "HUB_RETRY_BASE_DELAY": "60",
        "HUB_SCHEDULER": "off",
        **({"HUB_WAKE_INTERVAL": "60"} if woken_by == "socket" else {}),
    }
    web = HubProcess({**env, "HUB_DELIVERY": "off"}, log_path=tmp_path / "web.log").start()
    deliver_log = tmp_path / "deliver.log"
    with open(deliver_log, "wb") as out:
        deliverer = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "hub", "hub", "deliver"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: "Ctrl-C to stop" in deliver_log.read_text(),
            timeout=30,
            message="the delivery process started",
        )
        assert "delivering to 2 rest platforms" in deliver_log.read_text()
        for platform, name in ((a, "alice"), (b, "bob")):
            assert web.post(platform.token, "/user", {"id": 1, "name": name}).status_code == 201
        room = {"id": 1, "name": "r", "type": "private", "users": [{"A": [1]}, {"B": [1]}]}
        assert web.post(a.token, "/room", room).status_code == 201
        texts = [f"via the delivery process {i}" for i in range(25)]
        for text in texts:
            body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": text}
            assert web.post(a.token, "/message", body).status_code == 202
        wait_for(
            lambda: len(b.acked("message")) == len(texts),
            timeout=15,
            message="B got the messages through the delivery process",
        )
        assert [call.json["text"] for call in b.acked("message")] == texts
        assert b.duplicates() == []
        # The hub has recorded them delivered: stopping B cannot cut an answer it still reads
        # (a cut answer is resent, a duplicate the count below would not expect).
        wait_for(lambda: _pending(database_url, "B") == 0, message="B's stream recorded")

        # B goes away; its retry is set far off, so only a /ping can bring the queue back.
        b.stop()
        body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "while down"}
        assert web.post(a.token, "/message", body).status_code == 202
        wait_for(lambda: "is down" in deliver_log.read_text(), timeout=15, message="B down")
        b.start()
        assert web.post(b.token, "/ping", {}).status_code == 200  # served by the web server
        wait_for(
            lambda: len(b.acked("message")) == len(texts) + 1,
            timeout=15,
            message="the ping on the web server replayed B's queue in the delivery process",
        )
        assert b.acked("message")[-1].json["text"] == "while down"
        deliverer.send_signal(signal.SIGTERM)
        assert deliverer.wait(15) == 0
        assert "streams handed back" in deliver_log.read_text()
    finally:
        if deliverer.poll() is None:
            deliverer.kill()
            deliverer.wait(10)
        web.stop()


def _pending(database_url: str, name: str) -> int:
    """Pending events of a platform's stream, read as another process would."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count())
                .select_from(OutboxEvent)
                .join(Platform, Platform.id == OutboxEvent.platform_id)
                .where(Platform.name == name, OutboxEvent.status == EventStatus.PENDING)
            ).scalar_one()
    finally:
        engine.dispose()
