"""Several hub processes on one database share the work without breaking order or duplicating."""

from __future__ import annotations

import json

import pytest

from tests.hub_process import HubProcess
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
