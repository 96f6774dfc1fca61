"""The registry: platforms.json at start, admin registration at run time, onboarding."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from hub import create_app
from hub.models import OutboxEvent, Platform
from tests.conftest import FAST
from tests.support.loopback_platform import wait_for


def test_platforms_json_accepts_tp2_strings_and_booleans(platforms, make_hub) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(
        entries=[
            {**a.registry_entry(), "id": 1, "supportAudio": "True", "supportImage": "false"},
            {**b.registry_entry(), "id": 2, "supportAudio": False, "supportImage": "TRUE"},
        ]
    )
    listing = {p["name"]: p for p in hub.admin("GET", "/admin/platforms").json}
    assert (listing["A"]["supportAudio"], listing["A"]["supportImage"]) == (True, False)
    assert (listing["B"]["supportAudio"], listing["B"]["supportImage"]) == (False, True)
    assert all("token" not in p for p in listing.values())


def test_platform_names_match_case_insensitively_and_keep_their_spelling(
    platforms, make_hub
) -> None:
    a = platforms("BuasApp")
    hub = make_hub(a)
    hub.post(a, "/user", {"id": 4, "name": "dora"})
    users = hub.as_platform(a.token, "GET", "/users?platform=buasapp").json
    assert users[0]["globalId"] == "BuasApp:4"
    again = hub.admin("POST", "/admin/platforms", json={**a.registry_entry(), "name": "BUASAPP"})
    assert again.status_code == 200
    assert [p["name"] for p in hub.admin("GET", "/admin/platforms").json] == ["BUASAPP"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": "X", "token": "t"}, "endpoint"),
        ({"name": "X", "token": "t", "endpoint": "ftp://x/"}, "endpoint"),
        ({"name": "X:Y", "token": "t", "endpoint": "http://x/"}, "name"),
        ({"name": "", "token": "t", "endpoint": "http://x/"}, "name"),
        ({"name": "X", "endpoint": "http://x/"}, "token"),
        (
            {"name": "X", "token": "t", "endpoint": "http://x/", "supportAudio": "maybe"},
            "supportAudio",
        ),
        (
            {"name": "X", "token": "t", "endpoint": "http://x/", "transport": "carrier pigeon"},
            "transport",
        ),
        ({"name": "X", "token": "token-A", "endpoint": "http://x/"}, "token"),
    ],
)
def test_admin_registration_validates_entries(platforms, make_hub, entry, field) -> None:
    hub = make_hub(platforms("A"))
    answer = hub.admin("POST", "/admin/platforms", json=entry)
    assert answer.status_code == 400
    assert field in answer.json["errors"]
    assert [p["name"] for p in hub.admin("GET", "/admin/platforms").json] == ["A"]


def test_registering_a_platform_onboards_it_both_ways(platforms, make_hub) -> None:
    a = platforms("A")
    hub = make_hub(a)
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    hub.post(a, "/room", {"id": "pub", "name": "square", "type": "public", "users": [{"A": [1]}]})
    hub.post(a, "/room", {"id": "priv", "name": "secret", "type": "private", "users": [{"A": [1]}]})

    newcomer = platforms("N", users=[{"id": 1, "name": "nina"}, {"id": "x", "name": "xavier"}])
    answer = hub.admin("POST", "/admin/platforms", json=newcomer.registry_entry())
    assert answer.status_code == 201 and answer.json["name"] == "N"

    # The newcomer gets what exists: A's user and the public room, not the private one.
    wait_for(lambda: len(newcomer.acked("user")) == 1 and len(newcomer.acked("room")) == 1)
    assert newcomer.acked("user")[0].json["globalId"] == "A:1"
    assert newcomer.acked("room")[0].json["globalId"] == "A:pub"
    # Its own users are pulled and forwarded to the others.
    wait_for(lambda: len(a.acked("user")) == 2, message="A got N's users")
    assert sorted(c.json["globalId"] for c in a.acked("user")) == ["N:1", "N:x"]
    users = hub.as_platform(a.token, "GET", "/users?platform=N").json
    assert {u["id"] for u in users} == {1, "x"}


def test_a_platform_down_at_registration_is_onboarded_when_it_comes_up(platforms, make_hub) -> None:
    a = platforms("A")
    hub = make_hub(a)
    late = platforms("L", users=[{"id": 9, "name": "late larry"}])
    late.stop()
    hub.admin("POST", "/admin/platforms", json=late.registry_entry())
    wait_for(lambda: hub.admin("GET", "/admin/platforms").json[1]["health"] == "down")
    late.start()
    hub.post(late, "/ping", {})
    wait_for(lambda: len(a.acked("user")) == 1, message="L's users pulled once it was up")
    assert a.acked("user")[0].json["globalId"] == "L:9"


def test_deleting_a_platform_removes_it_and_its_users(platforms, make_hub) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(a, b)
    hub.post(b, "/user", {"id": 1, "name": "bob"})
    assert hub.admin("DELETE", "/admin/platforms/b").status_code == 200
    assert hub.admin("DELETE", "/admin/platforms/b").status_code == 404
    assert [p["name"] for p in hub.admin("GET", "/admin/platforms").json] == ["A"]
    assert hub.as_platform(a.token, "GET", "/users").json == []
    assert hub.post(b, "/user", {"id": 2, "name": "ghost"}).status_code == 401


def test_a_broken_platforms_file_stops_the_start_with_a_clear_error(tmp_path, database_url) -> None:
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([{"name": "X", "token": "t"}]))
    app = create_app(
        {
            **FAST,
            "HUB_DATABASE_URL": database_url,
            "HUB_PLATFORMS_FILE": str(registry),
            "HUB_DELIVERY": False,
        }
    )
    try:
        with pytest.raises(ValueError, match=r"entry 0.*endpoint"):
            app.extensions["hub"].serve()  # a server reads the file when it starts
    finally:
        app.extensions["hub"].close()


def test_disabled_platforms_neither_call_nor_receive(platforms, make_hub) -> None:
    a, b, c = platforms("A"), platforms("B"), platforms("C")
    hub = make_hub(
        entries=[a.registry_entry(), b.registry_entry(enabled="False"), c.registry_entry()]
    )
    assert hub.post(b, "/user", {"id": 1, "name": "bob"}).status_code == 403
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    wait_for(lambda: len(c.acked("user")) == 1)
    with hub.hub.db.read() as session:  # nothing is ever queued for B: nothing can reach it
        queued_for_b = session.execute(
            select(func.count())
            .select_from(OutboxEvent)
            .join(Platform, Platform.id == OutboxEvent.platform_id)
            .where(Platform.name == "B")
        ).scalar_one()
    assert queued_for_b == 0 and b.calls == []


def test_changing_a_platforms_endpoint_moves_its_stream_there(platforms, make_hub) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(a, b)
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    wait_for(lambda: len(b.acked("user")) == 1)
    moved = platforms("B", token=b.token)  # B's new address
    answer = hub.admin("POST", "/admin/platforms", json=moved.registry_entry())
    assert answer.status_code == 200 and answer.json["endpoint"] == moved.endpoint
    hub.post(a, "/user", {"id": 2, "name": "anna"})
    wait_for(lambda: len(moved.acked("user")) == 1, message="the event went to the new endpoint")
    assert moved.acked("user")[0].json["globalId"] == "A:2"
    assert len(b.acked("user")) == 1


def test_a_platform_removed_by_another_process_is_refused_once_its_token_is_forgotten(
    platforms, make_hub
) -> None:
    a, b = platforms("A"), platforms("B")
    hub = make_hub(a, b, HUB_TOKEN_CACHE_SECONDS=0.5)
    assert hub.post(b, "/user", {"id": 1, "name": "bob"}).status_code == 201  # token remembered
    other_process = make_hub(a, b, HUB_DELIVERY=False)  # a second hub on the same database
    assert other_process.admin("DELETE", "/admin/platforms/b").status_code == 200
    # Until the remembered token expires the call finds no platform to act for; then it is 401.
    wait_for(
        lambda: hub.post(b, "/user", {"id": 2, "name": "ghost"}).status_code == 401,
        message="the removed platform's token refused",
    )
    assert hub.as_platform(a.token, "GET", "/users").json == []
