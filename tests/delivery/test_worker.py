"""Delivery over REST against real loopback platforms: order, outages, retries, dead letters."""

from __future__ import annotations

import base64
import threading

from sqlalchemy import select

from hub.models import EventKind, OutboxEvent
from tests.conftest import Trio
from tests.support.loopback_platform import wait_for


def test_message_reaches_every_member_platform_signed_and_rendered_for_it(trio: Trio) -> None:
    answer = trio.send(trio.a, "hello")
    assert answer.status_code == 202
    message_id = answer.json["id"]
    for receiver in (trio.b, trio.c):
        wait_for(lambda r=receiver: len(r.acked("message")) == 1, message=receiver.name)
        call = receiver.acked("message")[0]
        assert call.signature_ok
        assert call.headers["authorization"] == f"Bearer {receiver.token}"
        assert call.path.endswith("/api/message")
        body = call.json
        assert body["id"] == message_id
        assert body["text"] == "hello"
        assert body["roomGlobalId"] == "A:10" and body["roomId"] == 10
        assert body["senderGlobalId"] == "A:1" and body["senderName"] == "alice"
        assert body["recipients"] == [1]  # this receiver's own user in the room
        assert body["sentAt"].endswith("Z")
    assert trio.b.acked("message")[0].webhook_id != trio.c.acked("message")[0].webhook_id
    assert trio.hub.before_marker(trio.a, via=trio.b) == []  # nothing back to the sender's


def test_messages_arrive_in_the_order_they_were_accepted(trio: Trio) -> None:
    texts = [f"m{i}" for i in range(25)]
    for text in texts:
        assert trio.send(trio.b, text).status_code == 202
    for receiver in (trio.a, trio.c):
        wait_for(lambda r=receiver: len(r.acked("message")) == 25, message=receiver.name)
        assert [c.json["text"] for c in receiver.acked("message")] == texts


def test_messages_posted_at_once_are_in_id_order_in_every_stream(trio: Trio) -> None:
    """Eight clients post together. Each platform's stream (seq order) holds the messages in
    the order of their ids, the same for both receivers: on PostgreSQL, where transactions
    run side by side, a message takes its seqs (locking the receivers' rows) before its id."""
    clients, each = 8, 15
    start = threading.Barrier(clients)
    failures: list[int] = []

    def post_some(worker: int) -> None:
        client = trio.hub.app.test_client()
        headers = {"Authorization": f"Bearer {trio.a.token}"}
        start.wait(10)
        for i in range(each):
            body = {
                "roomOriginalPlatform": "A",
                "roomId": 10,
                "senderId": 1,
                "text": f"{worker}.{i}",
            }
            answer = client.post("/message", json=body, headers=headers)
            if answer.status_code != 202:
                failures.append(answer.status_code)

    threads = [threading.Thread(target=post_some, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with trio.hub.hub.db.read() as session:
        rows = session.execute(
            select(OutboxEvent.platform_id, OutboxEvent.message_id)
            .where(OutboxEvent.kind == EventKind.MESSAGE)
            .order_by(OutboxEvent.platform_id, OutboxEvent.seq)
        ).all()
    streams: dict[int, list[int]] = {}
    for platform_id, message_id in rows:
        streams.setdefault(platform_id, []).append(message_id)
    assert len(streams) == 2 and all(len(ids) == clients * each for ids in streams.values())
    for ids in streams.values():
        assert ids == sorted(ids)


def test_a_platform_down_for_30_messages_gets_all_in_order_once_and_others_are_not_delayed(
    trio: Trio,
) -> None:
    trio.c.stop()
    texts = [f"outage {i}" for i in range(30)]
    for text in texts:
        assert trio.send(trio.a, text).status_code == 202
    # B gets all 30 while C is still down: its stream does not wait for C's retries.
    wait_for(lambda: len(trio.b.acked("message")) == 30, timeout=10, message="B got all 30")
    assert trio.c.calls == []
    admin_view = {p["name"]: p for p in trio.hub.admin("GET", "/admin/platforms").json}
    wait_for(lambda: trio.hub.admin("GET", "/admin/platforms").json[2]["health"] == "down")
    assert admin_view["C"]["queueDepth"] == 30

    trio.c.start()
    assert trio.hub.post(trio.c, "/ping", {}).status_code == 200
    wait_for(lambda: len(trio.c.acked("message")) == 30, timeout=10, message="C replayed 30")
    assert [c.json["text"] for c in trio.c.acked("message")] == texts
    assert trio.c.duplicates() == []
    assert [c.json["text"] for c in trio.b.acked("message")] == texts
    wait_for(lambda: trio.hub.admin("GET", "/admin/platforms").json[2]["health"] == "up")


def test_a_platform_that_comes_back_is_retried_without_a_ping(trio: Trio) -> None:
    trio.c.stop()
    for i in range(3):
        trio.send(trio.a, f"r{i}")
    wait_for(lambda: trio.hub.admin("GET", "/admin/platforms").json[2]["health"] == "down")
    trio.c.start()
    wait_for(lambda: len(trio.c.acked("message")) == 3, message="backoff retry delivered")
    assert [c.json["text"] for c in trio.c.acked("message")] == ["r0", "r1", "r2"]


def test_server_errors_are_retried_with_the_same_event_id(trio: Trio) -> None:
    trio.b.respond_with(503, times=2)
    trio.send(trio.a, "flaky")
    wait_for(lambda: len(trio.b.acked("message")) == 1)
    attempts = [c for c in trio.b.calls if c.kind == "message"]
    assert [c.status for c in attempts] == [503, 503, 200]
    assert len({c.webhook_id for c in attempts}) == 1


def test_a_rejected_event_is_dead_lettered_and_the_next_one_goes_on(trio: Trio) -> None:
    trio.b.respond_with(400, when=lambda body: body.get("text") == "reject me", times=1)
    for text in ("one", "reject me", "two"):
        trio.send(trio.a, text)
    wait_for(lambda: len(trio.b.acked("message")) == 2)
    assert [c.json["text"] for c in trio.b.acked("message")] == ["one", "two"]
    dead = trio.hub.admin("GET", "/admin/deadletters").json
    assert len(dead) == 1
    assert dead[0]["platform"] == "B" and dead[0]["payload"]["text"] == "reject me"
    assert "HTTP 400" in dead[0]["lastError"]
    rejected_id = next(c.webhook_id for c in trio.b.calls if c.status == 400)
    assert dead[0]["id"] == rejected_id

    retried = trio.hub.admin("POST", f"/admin/deadletters/{rejected_id}/retry")
    assert retried.status_code == 200
    wait_for(lambda: len(trio.b.acked("message")) == 3)
    last = trio.b.acked("message")[-1]
    assert last.json["text"] == "reject me" and last.webhook_id == rejected_id
    assert trio.hub.admin("GET", "/admin/deadletters").json == []
    assert trio.hub.admin("POST", f"/admin/deadletters/{rejected_id}/retry").status_code == 404


def test_events_failing_past_the_maximum_age_become_dead_letters(platforms, make_hub) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(a, b, HUB_DEAD_LETTER_AFTER=0.5)
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    hub.post(b, "/user", {"id": 1, "name": "bob"})
    hub.post(a, "/room", {"id": 1, "name": "r", "type": "private", "users": [{"A": [1], "B": [1]}]})
    wait_for(lambda: len(b.acked("room")) == 1)

    # Recorded delivered before B stops: a cut answer would be resent, and die with the others.
    def queue_depth() -> int:
        listing = hub.admin("GET", "/admin/platforms").json
        return next(p["queueDepth"] for p in listing if p["name"] == "B")

    wait_for(lambda: queue_depth() == 0, message="B's room recorded delivered")
    b.stop()
    for text in ("old 1", "old 2"):
        hub.post(
            a, "/message", {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": text}
        )
    wait_for(
        lambda: len(hub.admin("GET", "/admin/deadletters?platform=B").json) == 2,
        message="both messages dead-lettered after the maximum age",
    )
    dead = hub.admin("GET", "/admin/deadletters?platform=B").json
    assert all("maximum age" in d["lastError"] for d in dead)


def test_whsec_tokens_sign_with_the_decoded_secret(platforms, make_hub) -> None:
    secret = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes!!!!").decode()
    a, b = platforms("A"), platforms("B", token=secret)
    hub = make_hub(a, b)
    hub.post(a, "/user", {"id": 7, "name": "alice"})
    wait_for(lambda: len(b.acked("user")) == 1)
    assert b.acked("user")[0].signature_ok
    assert b.acked("user")[0].json == {"id": 7, "name": "alice", "platform": "A", "globalId": "A:7"}
