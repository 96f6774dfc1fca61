"""The TP2 calls: users, rooms, directory reads and ping, with what they forward to whom."""

from __future__ import annotations

from tests.conftest import Trio
from tests.support.loopback_platform import wait_for


def test_a_new_user_is_forwarded_to_every_other_platform(trio: Trio) -> None:
    answer = trio.hub.post(trio.b, "/user", {"id": "u-2", "name": "bea"})
    assert answer.status_code == 201
    assert answer.json == {"status": 201, "message": "user B:u-2 created", "globalId": "B:u-2"}
    for receiver in (trio.a, trio.c):
        wait_for(lambda r=receiver: len(r.acked("user")) == 1)
        assert receiver.acked("user")[0].json == {
            "id": "u-2",
            "name": "bea",
            "platform": "B",
            "globalId": "B:u-2",
        }
    assert trio.hub.before_marker(trio.b, via=trio.a) == []  # nothing back to its own


def test_renaming_a_user_answers_200_and_forwards_only_real_changes(trio: Trio) -> None:
    assert trio.hub.post(trio.a, "/user", {"id": 1, "name": "alicia"}).status_code == 200
    again = trio.hub.post(trio.a, "/user", {"id": 1, "name": "alicia"})
    assert again.status_code == 200 and "unchanged" in again.json["message"]
    wait_for(lambda: len(trio.b.acked("user")) == 1)
    trio.hub.post(trio.a, "/user", {"id": 2, "name": "marker"})  # proves the queue moved on
    wait_for(lambda: len(trio.b.acked("user")) == 2)
    assert [c.json["name"] for c in trio.b.acked("user")] == ["alicia", "marker"]


def test_local_ids_keep_their_type(trio: Trio) -> None:
    trio.hub.post(trio.c, "/user", {"id": "7", "name": "string seven"})
    users = trio.hub.as_platform(trio.a.token, "GET", "/users?platform=c").json
    assert {u["globalId"]: u["id"] for u in users} == {"C:1": 1, "C:7": "7"}


def test_get_users_lists_everyone_and_filters_by_platform(trio: Trio) -> None:
    everyone = trio.hub.as_platform(trio.a.token, "GET", "/users").json
    assert sorted(u["globalId"] for u in everyone) == ["A:1", "B:1", "C:1"]
    unknown = trio.hub.as_platform(trio.a.token, "GET", "/users?platform=nope")
    assert unknown.status_code == 404 and "nope" in unknown.json["message"]


def test_get_platforms_shows_capabilities_as_booleans_and_users(trio: Trio) -> None:
    listing = trio.hub.as_platform(trio.b.token, "GET", "/platforms").json
    assert [p["name"] for p in listing] == ["A", "B", "C"]
    assert listing[0]["users"] == [{"id": 1, "name": "alice", "platform": "A"}]
    assert all(isinstance(p["supportAudio"], bool) for p in listing)
    assert all("token" not in p and "endpoint" not in p for p in listing)


def test_token_in_body_or_query_is_accepted(trio: Trio) -> None:
    by_query = trio.hub.client.get(f"/users?token={trio.a.token}")
    assert by_query.status_code == 200
    by_body = trio.hub.client.post("/user", json={"token": trio.b.token, "id": 3, "name": "x"})
    assert by_body.status_code == 201 and by_body.json["globalId"] == "B:3"


def test_private_room_goes_to_member_platforms_only(trio: Trio) -> None:
    room = {"id": "pair", "name": "a and b", "type": "private", "users": [{"A": [1]}, {"B": [1]}]}
    assert trio.hub.post(trio.a, "/room", room).status_code == 201
    wait_for(lambda: len(trio.b.acked("room")) == 1)
    assert trio.b.acked("room")[0].json == {
        "id": "pair",
        "name": "a and b",
        "type": "private",
        "platform": "A",
        "globalId": "A:pair",
        "users": [{"A": [1]}, {"B": [1]}],
    }
    trio.send(trio.b, "only for A", room=("A", "pair"))
    wait_for(lambda: len(trio.a.acked("message")) == 1)
    assert trio.hub.before_marker(trio.c, via=trio.a) == []  # neither the room nor the message


def test_public_room_goes_to_every_platform(trio: Trio) -> None:
    room = {"id": 99, "name": "town square", "type": "public", "users": [{"A": [1]}]}
    trio.hub.post(trio.a, "/room", room)
    for receiver in (trio.b, trio.c):
        wait_for(lambda r=receiver: len(r.acked("room")) == 1)
    # Anyone may speak in a public room; its recipients on C are C's members: none.
    assert trio.send(trio.c, "hi all", room=("A", 99)).status_code == 202
    wait_for(lambda: len(trio.b.acked("message")) == 1)
    assert trio.b.acked("message")[0].json["recipients"] == []


def test_removing_a_platforms_members_tells_it_the_room_changed(trio: Trio) -> None:
    room = {"id": 10, "name": "lobby", "type": "private", "users": [{"A": [1]}, {"B": [1]}]}
    assert trio.hub.post(trio.a, "/room", room).status_code == 200
    wait_for(lambda: len(trio.c.acked("room")) == 1)
    assert trio.c.acked("room")[0].json["users"] == [{"A": [1]}, {"B": [1]}]
    trio.send(trio.a, "after the change")
    wait_for(lambda: len(trio.b.acked("message")) == 1)
    assert [c.kind for c in trio.hub.before_marker(trio.c, via=trio.a)] == ["room"]
    assert trio.send(trio.c, "let me in").status_code == 403


def test_recipients_are_left_out_for_platforms_that_do_not_want_them(platforms, make_hub) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(entries=[a.registry_entry(), b.registry_entry(wantsRecipients="False")])
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    hub.post(b, "/user", {"id": 1, "name": "bob"})
    hub.post(a, "/room", {"id": 1, "name": "r", "type": "private", "users": [{"A": [1], "B": [1]}]})
    hub.post(a, "/message", {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "x"})
    wait_for(lambda: len(b.acked("message")) == 1)
    assert "recipients" not in b.acked("message")[0].json


def test_ping_without_token_is_liveness_and_with_a_wrong_one_is_401(trio: Trio) -> None:
    assert trio.hub.client.get("/ping").json == {"status": 200, "message": "pong"}
    assert trio.hub.client.post("/ping").status_code == 200
    wrong = trio.hub.client.get("/ping", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.json["status"] == 401


def test_idempotency_key_returns_the_first_answer_and_stores_nothing_new(trio: Trio) -> None:
    headers = {"Idempotency-Key": "retry-1"}
    first = trio.send(trio.a, "once", headers=headers)
    second = trio.send(trio.a, "once", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json == second.json
    by_client_id = [trio.send(trio.a, "twice?", clientMessageId="c-1") for _ in range(2)]
    assert by_client_id[0].json["id"] == by_client_id[1].json["id"] != first.json["id"]
    reused = trio.send(trio.a, "another body", headers=headers)
    assert reused.status_code == 409
    trio.send(trio.a, "marker")
    wait_for(lambda: len(trio.b.acked("message")) == 3)
    assert [c.json["text"] for c in trio.b.acked("message")] == ["once", "twice?", "marker"]


def test_idempotency_keys_are_per_platform(trio: Trio) -> None:
    headers = {"Idempotency-Key": "same"}
    from_a = trio.send(trio.a, "from a", headers=headers)
    from_b = trio.send(trio.b, "from b", headers=headers)
    assert from_a.json["id"] != from_b.json["id"]
