"""The loopback platform itself, over real HTTP, signed the way the hub signs."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from tests.support.loopback_platform import LoopbackPlatform, wait_for

TOKEN = "token-A"
USERS = [{"id": 1, "name": "alice"}, {"id": "x2", "name": "bob"}]


@pytest.fixture
def platform() -> Iterator[LoopbackPlatform]:
    with LoopbackPlatform("A", TOKEN, users=USERS) as started:
        yield started


def deliver(
    platform: LoopbackPlatform,
    kind: str,
    payload: Any,
    msg_id: str | None = None,
    key: str | bytes | None = None,
    token: str | None = None,
    session: Any = requests,
) -> requests.Response:
    """POST ``payload`` to the platform as the hub does: bearer token plus webhook headers."""
    body = json.dumps(payload)
    msg_id = msg_id or f"evt_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(key if key is not None else TOKEN.encode()).sign(msg_id, now, body)
    headers = {
        "Authorization": f"Bearer {token if token is not None else platform.token}",
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return session.post(platform.endpoint + kind, data=body.encode(), headers=headers, timeout=5)


def message(text: str) -> dict[str, Any]:
    return {"id": "m1", "roomOriginalPlatform": "A", "roomId": 10, "senderId": 1, "text": text}


def test_signed_call_is_recorded_with_a_valid_signature(platform: LoopbackPlatform) -> None:
    answer = deliver(platform, "message", message("hello"), msg_id="evt_1")
    assert answer.status_code == 200 and answer.json() == {"status": 200}
    [call] = platform.calls
    assert (call.kind, call.path, call.webhook_id, call.status) == ("message", "/api/message",
                                                                    "evt_1", 200)  # fmt: skip
    assert call.signature_ok and call.acked
    assert call.json == message("hello") and json.loads(call.body) == call.json
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert platform.texts() == ["hello"] and platform.received("message") == [message("hello")]


def test_wrong_signature_is_recorded_as_not_ok(platform: LoopbackPlatform) -> None:
    assert deliver(platform, "user", {"id": 1}, key=b"another key").status_code == 200
    [call] = platform.calls
    assert call.kind == "user" and not call.signature_ok


def test_whsec_token_is_keyed_with_its_decoded_bytes() -> None:
    token = "whsec_" + base64.b64encode(b"sixteen byte key").decode()
    with LoopbackPlatform("W", token) as platform:
        deliver(platform, "room", {"id": 10}, key=token, token=token)
        deliver(platform, "room", {"id": 11}, key=token.encode(), token=token)
        assert [c.signature_ok for c in platform.calls] == [True, False]


@pytest.mark.parametrize("token", ["wrong", ""])
def test_wrong_or_missing_bearer_is_401_and_kept_apart(
    platform: LoopbackPlatform, token: str
) -> None:
    assert deliver(platform, "message", message("x"), token=token).status_code == 401
    assert platform.calls == [] and platform.texts() == []
    [rejected] = platform.rejected
    assert (rejected.kind, rejected.status) == ("message", 401)


def test_unknown_route_is_404_and_kept_apart(platform: LoopbackPlatform) -> None:
    assert deliver(platform, "/message", message("x")).status_code == 404  # ".../api//message"
    assert platform.calls == [] and platform.rejected[0].status == 404


def test_get_users_answers_the_configured_users(platform: LoopbackPlatform) -> None:
    answer = requests.get(platform.endpoint + "users", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.json() == USERS
    assert [c.kind for c in platform.calls] == ["users"]
    platform.users = [{"id": 3, "name": "carol"}]
    answer = requests.get(platform.endpoint + "users", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.json() == [{"id": 3, "name": "carol"}]


def test_stop_refuses_connections_and_start_serves_again_on_the_same_port(
    platform: LoopbackPlatform,
) -> None:
    port, endpoint = platform.port, platform.endpoint
    session = requests.Session()  # a keep-alive connection must not outlive stop()
    assert deliver(platform, "message", message("before"), session=session).status_code == 200
    for _ in range(3):
        platform.stop()
        with pytest.raises(requests.ConnectionError):
            deliver(platform, "message", message("down"), session=session)
        with pytest.raises(requests.ConnectionError):
            deliver(platform, "message", message("down"))
        platform.start()
        assert (platform.port, platform.endpoint) == (port, endpoint)
        assert deliver(platform, "message", message("after"), session=session).status_code == 200
    assert platform.texts() == ["before", "after", "after", "after"]


def test_stop_drops_a_request_in_flight(platform: LoopbackPlatform) -> None:
    platform.respond_with(200, delay=30)
    outcome: list[BaseException | int] = []

    def send() -> None:
        try:
            outcome.append(deliver(platform, "message", message("slow")).status_code)
        except requests.RequestException as error:
            outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: len(platform.calls) == 1, message="the slow call arrived")
    platform.stop()
    sender.join(timeout=5)
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError)
    assert platform.calls[0].status is None and platform.acked("message") == []


def test_respond_with_n_times_then_default(platform: LoopbackPlatform) -> None:
    platform.respond_with(500, times=3)
    statuses = [deliver(platform, "message", message(str(i))).status_code for i in range(5)]
    assert statuses == [500, 500, 500, 200, 200]
    assert [c.status for c in platform.calls] == statuses
    assert [c.json["text"] for c in platform.acked("message")] == ["3", "4"]
    assert platform.texts() == ["0", "1", "2", "3", "4"]
    assert platform.texts(acked=True) == ["3", "4"]


def test_respond_with_a_condition(platform: LoopbackPlatform) -> None:
    platform.respond_with(400, kind="message", when=lambda body: body.get("text") == "reject me")
    assert deliver(platform, "message", message("reject me")).status_code == 400
    assert deliver(platform, "message", message("fine")).status_code == 200
    assert deliver(platform, "user", {"id": 1, "text": "reject me"}).status_code == 200
    assert platform.wait_for_texts(1) == ["fine"]
    platform.clear_responses()
    assert deliver(platform, "message", message("reject me")).status_code == 200


def test_duplicates_are_recorded_and_deduplicated(platform: LoopbackPlatform) -> None:
    for msg_id in ("evt_1", "evt_2", "evt_1"):
        deliver(platform, "message", message(msg_id), msg_id=msg_id)
    assert platform.texts() == ["evt_1", "evt_2", "evt_1"]
    assert platform.duplicates() == ["evt_1"]
    assert [c.webhook_id for c in platform.unique_calls("message")] == ["evt_1", "evt_2"]
    platform.reset()
    assert platform.calls == [] and platform.duplicates() == []


def test_registry_entry_and_wait_for_timeout(platform: LoopbackPlatform) -> None:
    assert platform.registry_entry(transport="rest", supportAudio="False") == {
        "name": "A", "endpoint": platform.endpoint, "token": TOKEN,
        "supportAudio": "False", "supportImage": True, "transport": "rest",
    }  # fmt: skip
    with pytest.raises(AssertionError, match="two messages"):
        wait_for(lambda: False, timeout=0.1, message="two messages")
    with pytest.raises(AssertionError, match="1 acked messages"):
        platform.wait_for_texts(1, timeout=0.1)
