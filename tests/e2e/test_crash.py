"""Durability across a crash: what the hub answered 202 for is delivered after a SIGKILL."""

from __future__ import annotations

import json

import pytest

from tests.support.hub_process import HubProcess
from tests.support.loopback_platform import wait_for

pytestmark = pytest.mark.slow


def _env(database_url: str, registry: str) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": database_url,
        "HUB_PLATFORMS_FILE": registry,
        "HUB_LEASE_SECONDS": "1",
        "HUB_RETRY_BASE_DELAY": "0.05",
        "HUB_RETRY_MAX_DELAY": "0.3",
        "HUB_DELIVERY_POLL_INTERVAL": "0.1",
        "HUB_ADMIN_TOKEN": "admin-secret",
    }


def test_messages_accepted_before_a_sigkill_are_delivered_in_order_after_restart(
    platforms, database_url, tmp_path
) -> None:
    a, b, c = platforms("A"), platforms("B"), platforms("C")
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([p.registry_entry() for p in (a, b, c)]))
    env = _env(database_url, str(registry))
    hub = HubProcess(env, log_path=tmp_path / "hub-1.log").start()
    try:
        for platform, name in ((a, "alice"), (b, "bob"), (c, "carol")):
            assert hub.post(platform.token, "/user", {"id": 1, "name": name}).status_code == 201
        room = {
            "id": 1,
            "name": "r",
            "type": "private",
            "users": [{"A": [1]}, {"B": [1]}, {"C": [1]}],
        }
        assert hub.post(a.token, "/room", room).status_code == 201
        wait_for(lambda: len(c.acked("room")) == 1, message="C got the room")
        c.stop()
        texts = [f"durable {i}" for i in range(20)]
        for text in texts:
            answer = hub.post(
                a.token,
                "/message",
                {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": text},
            )
            assert answer.status_code == 202
        hub.kill()  # right after the last 202
    finally:
        hub.stop()

    c.start()
    restarted = HubProcess(env, log_path=tmp_path / "hub-2.log").start()
    try:
        wait_for(
            lambda: len(c.acked("message")) == 20,
            timeout=30,
            message="C got every accepted message after the restart",
        )
        assert [call.json["text"] for call in c.acked("message")] == texts
        assert len({call.webhook_id for call in c.acked("message")}) == 20
        wait_for(lambda: len(b.unique_calls("message")) == 20, timeout=30)
        # B may see a message twice (sent, then the crash before the ack was stored), but with
        # the same webhook-id, and the first arrivals are in order.
        first_seen = [call.json["text"] for call in b.unique_calls("message")]
        assert first_seen == texts
    finally:
        restarted.stop()


def test_gunicorn_serves_the_hub_and_delivers(platforms, database_url, tmp_path) -> None:
    a, b = platforms("A"), platforms("B")
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([p.registry_entry() for p in (a, b)]))
    hub = HubProcess(
        _env(database_url, str(registry)), server="gunicorn", log_path=tmp_path / "gunicorn.log"
    ).start()
    try:
        assert hub.post(a.token, "/user", {"id": 1, "name": "alice"}).status_code == 201
        wait_for(lambda: len(b.acked("user")) == 1, message="gunicorn process delivered")
    finally:
        hub.stop()
