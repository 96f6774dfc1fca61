"""Bad input and bad credentials: a clear 4xx in the envelope, nothing stored, nothing sent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.models import IdempotencyKey, Message, OutboxEvent, Platform, Room, RoomMember, User
from tests.conftest import Trio


def table_counts(trio: Trio) -> dict[str, int]:
    with trio.hub.hub.db.read() as session:
        return {
            model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar()
            for model in (Message, OutboxEvent, User, Room, RoomMember, IdempotencyKey, Platform)
        }


MESSAGE = {"roomOriginalPlatform": "A", "roomId": 10, "senderId": 1, "text": "hi"}
ROOM = {"id": 11, "name": "r", "type": "private", "users": [{"A": [1]}]}

# (path, body, expected status, field or text the answer must name)
CASES: list[tuple[str, Any, int, str]] = [
    ("/message", {}, 400, "roomOriginalPlatform"),
    ("/message", {**MESSAGE, "text": 5}, 400, "text"),
    ("/message", {**MESSAGE, "roomId": True}, 400, "roomId"),
    ("/message", {**MESSAGE, "roomId": ""}, 400, "roomId"),
    ("/message", {**MESSAGE, "senderId": [1]}, 400, "senderId"),
    ("/message", {**MESSAGE, "roomOriginalPlatform": "A:B"}, 400, "roomOriginalPlatform"),
    ("/message", {**MESSAGE, "text": "x" * 70000}, 400, "text"),
    ("/message", {**MESSAGE, "attachments": ["nope"]}, 400, "attachments"),
    ("/message", {**MESSAGE, "clientMessageId": 3}, 400, "clientMessageId"),
    ("/message", [MESSAGE], 400, "_schema"),
    ("/message", "just a string", 400, "_schema"),
    ("/message", {**MESSAGE, "roomOriginalPlatform": "Nowhere"}, 404, "Nowhere"),
    ("/message", {**MESSAGE, "roomId": 404}, 404, "A:404"),
    ("/message", {**MESSAGE, "senderId": 999}, 404, "B:999"),
    ("/message", {**MESSAGE, "senderPlatform": "A"}, 403, "cannot speak for users of A"),
    ("/message", {**MESSAGE, "text": "nul \x00 inside"}, 400, "text"),
    ("/user", {"id": 5}, 400, "name"),
    ("/user", {"id": "a\x00", "name": "x"}, 400, "id"),
    ("/user", {"id": None, "name": "x"}, 400, "id"),
    ("/user", {"id": 5, "name": ""}, 400, "name"),
    ("/user", {"id": 5, "name": "x", "platform": "A"}, 403, "cannot speak for users of A"),
    ("/room", {**ROOM, "type": "secret"}, 400, "type"),
    ("/room", {**ROOM, "users": "A:1"}, 400, "users"),
    ("/room", {**ROOM, "users": [{"A": ["1", 2, 3]}]}, 400, "A:2"),
    ("/room", {**ROOM, "users": [{"Ghost": [1]}]}, 400, "Ghost"),
]


@pytest.mark.parametrize(("path", "body", "status", "named"), CASES)
def test_bad_bodies_are_refused_clearly_and_change_nothing(
    trio: Trio, path: str, body: Any, status: int, named: str
) -> None:
    before = table_counts(trio)
    answer = trio.hub.post(trio.b, path, body)
    assert answer.status_code == status
    assert answer.json["status"] == status
    assert isinstance(answer.json["message"], str) and answer.json["message"]
    if status == 400:
        assert named in str(answer.json["errors"]) + answer.json["message"]
    else:
        assert named in answer.json["message"]
    assert table_counts(trio) == before


def test_a_sender_outside_the_room_is_forbidden(trio: Trio) -> None:
    trio.hub.post(
        trio.a, "/room", {"id": 12, "name": "a only", "type": "private", "users": [{"A": [1]}]}
    )
    before = table_counts(trio)
    answer = trio.send(trio.b, "sneaking in", room=("A", 12))
    assert answer.status_code == 403 and "not a member" in answer.json["message"]
    assert table_counts(trio) == before


@pytest.mark.parametrize("raw", [b"{not json", b'{"text": "unterminated', b"\xff\xfe"])
def test_malformed_json_is_a_400(trio: Trio, raw: bytes) -> None:
    before = table_counts(trio)
    answer = trio.hub.as_platform(
        trio.b.token, "POST", "/message", data=raw, content_type="application/json"
    )
    assert answer.status_code == 400 and answer.json["status"] == 400
    assert table_counts(trio) == before


def test_oversized_bodies_are_413(trio: Trio) -> None:
    before = table_counts(trio)
    huge = {**MESSAGE, "text": "x" * (2 * 1024 * 1024)}
    answer = trio.hub.post(trio.b, "/message", huge)
    assert answer.status_code == 413 and answer.json["status"] == 413
    assert "HUB_MAX_BODY_BYTES" in answer.json["message"]
    assert table_counts(trio) == before


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({"Authorization": "Bearer wrong"}, ""),
        ({"Authorization": "Basic xyz"}, ""),
        ({}, "?token=wrong"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/message"),
        ("POST", "/user"),
        ("POST", "/room"),
        ("GET", "/users"),
        ("GET", "/platforms"),
    ],
)
def test_missing_or_unknown_tokens_are_401(
    trio: Trio, headers: dict, query: str, method: str, path: str
) -> None:
    before = table_counts(trio)
    kwargs = {"json": MESSAGE} if method == "POST" else {}
    answer = trio.hub.client.open(path + query, method=method, headers=headers, **kwargs)
    assert answer.status_code == 401 and answer.json["status"] == 401
    assert table_counts(trio) == before


def test_nul_characters_in_the_url_or_token_are_refused(trio: Trio) -> None:
    in_query = trio.hub.as_platform(trio.a.token, "GET", "/users?platform=%00A")
    assert in_query.status_code == 400 and "NUL" in in_query.json["message"]
    in_path = trio.hub.admin("DELETE", "/admin/platforms/A%00")
    assert in_path.status_code == 400
    assert trio.hub.client.get("/users?token=a%00b").status_code == 400


def test_a_wrong_token_in_the_body_is_401(trio: Trio) -> None:
    answer = trio.hub.client.post("/message", json={**MESSAGE, "token": "wrong"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/platforms"),
        ("POST", "/admin/platforms"),
        ("DELETE", "/admin/platforms/A"),
        ("GET", "/admin/deadletters"),
        ("POST", "/admin/deadletters/x/retry"),
    ],
)
def test_admin_endpoints_need_the_admin_token(trio: Trio, method: str, path: str) -> None:
    before = table_counts(trio)
    as_platform = trio.hub.as_platform(trio.a.token, method, path, json={})
    assert as_platform.status_code == 401
    assert trio.hub.client.open(path, method=method).status_code == 401
    assert table_counts(trio) == before


def test_admin_endpoints_refuse_all_without_a_configured_admin_token(platforms, make_hub) -> None:
    hub = make_hub(platforms("A"), HUB_ADMIN_TOKEN=None)
    answer = hub.as_platform("", "GET", "/admin/platforms")
    assert answer.status_code == 403 and "HUB_ADMIN_TOKEN" in answer.json["message"]


def test_unknown_routes_and_methods_answer_json(trio: Trio) -> None:
    missing = trio.hub.client.get("/nope")
    assert missing.status_code == 404 and missing.json["status"] == 404
    wrong_method = trio.hub.client.delete("/message")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
