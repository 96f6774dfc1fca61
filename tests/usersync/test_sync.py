"""The user sync against real loopback platforms: diff, forwarding, failures, and run-once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.models import JobRun, OutboxEvent, Platform
from hub.usersync import sync as user_sync
from tests.conftest import HubClient
from tests.support.loopback_platform import LoopbackPlatform, wait_for

ALICE_BOB = [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]


def onboarded(hub: HubClient, *platforms: LoopbackPlatform) -> None:
    """Wait until every platform's users were pulled and every other platform has them."""
    total = sum(len(p.users) for p in platforms)
    for p in platforms:
        wait_for(
            lambda p=p: len(p.acked("user")) == total - len(p.users), message=f"{p.name} users"
        )
    with hub.hub.db.read() as session:
        assert all(p.users_synced_at for p in session.execute(select(Platform)).scalars())
    for p in platforms:
        p.reset()


def outbox_size(hub: HubClient) -> int:
    with hub.hub.db.read() as session:
        return session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()


def by_platform(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["platform"]: p for p in report["platforms"]}


def names(hub: HubClient, platform: LoopbackPlatform) -> dict[str, str]:
    users = hub.as_platform(platform.token, "GET", "/users").json
    return {u["globalId"]: u["name"] for u in users}


def test_sync_registers_new_users_renames_changed_ones_and_reports_vanished_ones(
    platforms, make_hub
) -> None:
    a = platforms("A", users=list(ALICE_BOB))
    b = platforms("B", users=[{"id": "c", "name": "carol"}])
    hub = make_hub(a, b)
    onboarded(hub, a, b)
    a.users = [{"id": 1, "name": "alicia"}, {"id": 3, "name": "dave"}]

    answer = hub.admin("POST", "/admin/sync-users")
    assert answer.status_code == 200
    report = by_platform(answer.json)
    assert report["A"] == {
        "platform": "A",
        "created": [{"globalId": "A:3", "name": "dave"}],
        "renamed": [{"globalId": "A:1", "name": "alicia", "oldName": "alice"}],
        "vanished": [{"globalId": "A:2", "name": "bob"}],
        "invalid": [],
        "error": None,
    }
    assert report["B"] == {
        "platform": "B",
        **{key: [] for key in ("created", "renamed", "vanished", "invalid")},
        "error": None,
    }
    assert answer.json["dryRun"] is False and answer.json["deleteVanished"] is False
    # Each change reaches the other platform as POST /user would send it; nothing goes to A.
    wait_for(lambda: len(b.acked("user")) == 2, message="B gets the two changes")
    assert [(u["globalId"], u["name"]) for u in b.received("user")] == [
        ("A:1", "alicia"),
        ("A:3", "dave"),
    ]
    # A vanished user is only reported by default.
    assert names(hub, a) == {"A:1": "alicia", "A:2": "bob", "A:3": "dave", "B:c": "carol"}
    assert [c.kind for c in hub.before_marker(a, via=b) if c.kind != "users"] == []


def test_a_dry_run_writes_nothing_and_a_second_run_forwards_nothing(platforms, make_hub) -> None:
    a = platforms("A", users=list(ALICE_BOB))
    b = platforms("B")
    hub = make_hub(a, b)
    onboarded(hub, a, b)
    a.users = [{"id": 1, "name": "alicia"}, {"id": 2, "name": "bob"}, {"id": "x", "name": "xavi"}]
    before = outbox_size(hub)

    dry = hub.admin("POST", "/admin/sync-users?dryRun=true").json
    assert dry["dryRun"] is True
    assert [c["globalId"] for c in by_platform(dry)["A"]["created"]] == ["A:x"]
    assert [c["globalId"] for c in by_platform(dry)["A"]["renamed"]] == ["A:1"]
    assert outbox_size(hub) == before
    assert names(hub, a)["A:1"] == "alice" and "A:x" not in names(hub, a)
    with hub.hub.db.read() as session:
        assert session.execute(select(func.count()).select_from(JobRun)).scalar_one() == 0

    first = user_sync.sync_now(hub.hub.db, hub.hub.config)
    assert first.to_dict()["platforms"] == dry["platforms"]
    assert outbox_size(hub) == before + 2
    second = user_sync.sync_now(hub.hub.db, hub.hub.config)
    assert all(
        not (p.diff.created or p.diff.renamed or p.diff.vanished or p.error)
        for p in second.platforms
    )
    assert outbox_size(hub) == before + 2
    wait_for(lambda: len(b.acked("user")) == 2)
    assert b.duplicates() == []
    # Both real runs are on record, with their reports.
    with hub.hub.db.read() as session:
        runs = session.execute(select(JobRun).order_by(JobRun.id)).scalars().all()
    assert [r.job for r in runs] == ["user-sync", "user-sync"]
    assert all(r.finished_at and r.report["platforms"] for r in runs)


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        ("stopped", "down: GET"),
        ("503", "down: HTTP 503"),
        ("404", "HTTP 404"),
        ("object", "JSON list"),
        ("string", "JSON list"),
    ],
)
def test_a_platform_down_or_answering_garbage_is_skipped_and_reported(
    platforms, make_hub, breakage, error
) -> None:
    a = platforms("A", users=[{"id": 1, "name": "alice"}])
    b = platforms("B", users=[{"id": 1, "name": "bob"}])
    hub = make_hub(a, b)
    onboarded(hub, a, b)
    if breakage == "stopped":
        b.stop()
    elif breakage in ("503", "404"):
        b.respond_with(int(breakage), kind="users")
    else:
        b.respond_with(200, kind="users", body={"users": []} if breakage == "object" else "<h1>")
    b.users = [{"id": 1, "name": "bobby"}]
    a.users.append({"id": 2, "name": "anna"})

    answer = hub.admin("POST", "/admin/sync-users")
    assert answer.status_code == 200
    report = by_platform(answer.json)
    assert error in report["B"]["error"]
    assert report["B"]["created"] == report["B"]["renamed"] == []
    assert report["A"]["error"] is None
    assert [c["globalId"] for c in report["A"]["created"]] == ["A:2"]
    assert names(hub, a)["B:1"] == "bob"


def test_invalid_entries_are_skipped_and_reported_and_never_count_as_vanished(
    platforms, make_hub
) -> None:
    a = platforms("A", users=list(ALICE_BOB))
    b = platforms("B")
    hub = make_hub(a, b)
    onboarded(hub, a, b)
    a.users = [
        {"id": 1, "name": "alice"},
        {"id": 2},  # no name: invalid, but bob is still there
        {"id": True, "name": "boolean id"},
        "junk",
        {"name": "no id"},
        {"id": 3, "name": "carl"},
        {"id": 3, "name": "carl again"},
    ]
    report = by_platform(hub.admin("POST", "/admin/sync-users").json)["A"]
    assert [c["globalId"] for c in report["created"]] == ["A:3"]
    assert report["vanished"] == [] and report["error"] is None
    assert len(report["invalid"]) == 5
    assert any("duplicate id" in why for why in report["invalid"])
    wait_for(lambda: len(b.acked("user")) == 1)
    assert b.received("user")[0]["name"] == "carl"


def test_vanished_users_are_deleted_when_configured_and_their_rooms_updated(
    platforms, make_hub
) -> None:
    a = platforms("A", users=list(ALICE_BOB))
    b = platforms("B", users=[{"id": 1, "name": "carol"}])
    c = platforms("C", users=[{"id": 1, "name": "dan"}])
    hub = make_hub(a, b, c, HUB_SYNC_DELETE_VANISHED=True)
    onboarded(hub, a, b, c)
    rooms = [
        (b, "r", [{"A": [2]}, {"B": [1]}, {"C": [1]}]),
        (b, "solo", [{"A": [2]}, {"B": [1]}]),
        (a, "own", [{"A": [1, 2]}, {"C": [1]}]),
    ]
    for owner, room_id, members in rooms:
        body = {"id": room_id, "name": room_id, "type": "private", "users": members}
        assert hub.post(owner, "/room", body).status_code == 201
    wait_for(lambda: len(a.acked("room")) == 2 and len(c.acked("room")) == 2)
    for p in (a, b, c):
        p.reset()
    a.users = [{"id": 1, "name": "alice"}]

    report = hub.admin("POST", "/admin/sync-users").json
    assert report["deleteVanished"] is True
    assert by_platform(report)["A"]["vanished"] == [{"globalId": "A:2", "name": "bob"}]
    assert "A:2" not in names(hub, a)
    # Whoever knows a room hears it lost bob: its members' platforms, the platform that lost its
    # last member (A in B:solo), and the room's own platform unless bob was its own user.
    expected = {a: ["B:r", "B:solo"], b: ["B:r", "B:solo"], c: ["B:r", "A:own"]}
    for platform, room_ids in expected.items():
        wait_for(lambda p=platform, n=room_ids: len(p.acked("room")) == len(n))
        got = platform.received("room", acked=True)
        assert sorted(r["globalId"] for r in got) == sorted(room_ids)
        assert all(2 not in group.get("A", []) for r in got for group in r["users"])


def test_two_hubs_racing_for_one_period_run_the_sync_once(platforms, make_hub) -> None:
    a = platforms("A", users=[{"id": 1, "name": "alice"}])
    b = platforms("B")
    first = make_hub(a, b)
    second = make_hub(a, b)  # another hub process on the same database
    onboarded(first, a, b)
    a.users.append({"id": 2, "name": "anna"})
    period = "2030-01-01T03:00:00+00:00"
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(name: str, hub: HubClient) -> None:
        start.wait()
        results[name] = hub.hub.scheduler.run_period(period)

    threads = [
        threading.Thread(target=run, args=item) for item in ({"1": first, "2": second}.items())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2
    winners = [r for r in results.values() if r is not None]
    assert len(winners) == 1
    assert [c.global_id for c in winners[0].platforms[0].diff.created] == ["A:2"]
    with first.hub.db.read() as session:
        runs = session.execute(select(JobRun)).scalars().all()
        forwarded = session.execute(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.payload.contains('"globalId":"A:2"'))
        ).scalar_one()
    assert [(r.job, r.period) for r in runs] == [("user-sync", period)]
    assert runs[0].finished_at is not None and runs[0].report["dryRun"] is False
    assert forwarded == 1
    wait_for(lambda: len(b.acked("user")) == 1)


def test_the_admin_call_needs_the_admin_token_and_a_known_platform(platforms, make_hub) -> None:
    a = platforms("A")
    hub = make_hub(a)
    assert hub.as_platform(a.token, "POST", "/admin/sync-users").status_code == 401
    unknown = hub.admin("POST", "/admin/sync-users?platform=nope")
    assert unknown.status_code == 404 and "nope" in unknown.json["message"]
    only = hub.admin("POST", "/admin/sync-users?platform=a&dryRun=1")
    assert only.status_code == 200 and [p["platform"] for p in only.json["platforms"]] == ["A"]
