"""The operator's ``flask hub`` commands, through Flask's CLI runner, on real loopback platforms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from hub import create_app
from hub.models import EventKind, OutboxEvent, Platform
from tests.conftest import FAST, HubClient, Trio
from tests.support.loopback_platform import wait_for

COMMANDS = [
    "platforms",
    "queue",
    "add-platform",
    "remove-platform",
    "load-platforms",
    "deadletters",
    "retry-deadletter",
    "retry-deadletters",
    "replay",
    "sync-users",
    "demo",
]


def hub_cli(hub: HubClient, *args: str, input: str | None = None) -> Any:
    return hub.command(*args, input=input)


def listed(hub: HubClient, name: str) -> dict[str, Any]:
    return next(p for p in hub.admin("GET", "/admin/platforms").json if p["name"] == name)


def health(hub: HubClient, name: str) -> str:
    return listed(hub, name)["health"]


def settled(hub: HubClient, name: str) -> None:
    """Wait until the hub has recorded every event of a platform's stream as delivered."""
    wait_for(lambda: listed(hub, name)["queueDepth"] == 0, message=f"{name}'s queue empty")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(platforms, make_hub, command: str) -> None:
    result = hub_cli(make_hub(platforms("A")), command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_platforms_and_queue_show_health_depth_and_errors_but_never_tokens(trio: Trio) -> None:
    trio.c.stop()
    assert trio.send(trio.a, "hello").status_code == 202
    wait_for(lambda: health(trio.hub, "C") == "down", message="C marked down")
    settled(trio.hub, "B")  # B's copy recorded as delivered, so only C's is pending

    listing = hub_cli(trio.hub, "platforms")
    assert listing.exit_code == 0, listing.output
    rows = {line.split()[0]: line for line in listing.output.splitlines()[1:]}
    assert set(rows) == {"A", "B", "C"}
    assert rows["C"].split()[:6] == ["C", "rest", "yes", "down", "1", "1"]
    assert "connection refused" in rows["C"] and trio.c.endpoint in rows["C"]
    assert rows["A"].split()[3:6] == ["up", "1", "0"]
    assert not any(p.token in listing.output for p in (trio.a, trio.b, trio.c))

    queue = hub_cli(trio.hub, "queue")
    assert queue.exit_code == 0, queue.output
    assert "1 event(s) pending; down: C" in queue.output
    line_c = next(line for line in queue.output.splitlines() if line.startswith("C "))
    assert line_c.split()[1:3] == ["down", "1"]


def test_add_platform_validates_like_the_admin_api_and_onboards(platforms, make_hub) -> None:
    a = platforms("A", users=[{"id": 1, "name": "alice"}])
    n = platforms("N", users=[{"id": 7, "name": "nina"}])
    hub = make_hub(a)
    # A's users are in (committed) before N joins, so N is sent them when it registers.
    wait_for(lambda: hub.as_platform(a.token, "GET", "/users").json, message="A's users pulled")

    no_endpoint = hub_cli(hub, "add-platform", "--name", "X", "--token", "t")
    assert no_endpoint.exit_code == 1 and "endpoint" in no_endpoint.output
    taken = hub_cli(
        hub, "add-platform", "--name", "X", "--endpoint", n.endpoint, "--token", a.token
    )
    assert taken.exit_code == 1 and "already used" in taken.output
    bad_name = hub_cli(
        hub, "add-platform", "--name", "X:Y", "--endpoint", n.endpoint, "--token", "t"
    )
    assert bad_name.exit_code == 1 and "name" in bad_name.output

    # The token is asked for, hidden, when not given on the command line.
    added = hub_cli(
        hub, "add-platform", "--name", "N", "--endpoint", n.endpoint, "--support-image",
        input=f"{n.token}\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "registered N" in added.output and n.token not in added.output
    # Onboarded both ways: N gets A's user, A gets N's pulled user.
    wait_for(lambda: len(n.acked("user")) == 1 and len(a.acked("user")) == 1)
    listing = {p["name"]: p for p in hub.admin("GET", "/admin/platforms").json}
    assert (listing["N"]["supportImage"], listing["N"]["supportAudio"]) == (True, False)
    again = hub_cli(
        hub, "add-platform", "--name", "n", "--endpoint", n.endpoint, "--token", n.token
    )
    assert again.exit_code == 0 and "updated n" in again.output


def test_remove_platform_asks_first(trio: Trio) -> None:
    declined = hub_cli(trio.hub, "remove-platform", "C", input="n\n")
    assert declined.exit_code == 1 and "Remove C with 1 user(s), 0 room(s)" in declined.output
    assert health(trio.hub, "C") == "up"
    removed = hub_cli(trio.hub, "remove-platform", "c", "--yes")
    assert removed.exit_code == 0 and "removed C" in removed.output
    assert [p["name"] for p in trio.hub.admin("GET", "/admin/platforms").json] == ["A", "B"]
    unknown = hub_cli(trio.hub, "remove-platform", "nope", "--yes")
    assert unknown.exit_code == 1 and "unknown platform" in unknown.output


def test_dead_letters_are_listed_and_retried_one_or_all(trio: Trio) -> None:
    trio.b.respond_with(400, kind="message", times=3)
    for text in ("one", "two", "three"):
        trio.send(trio.a, text)
    wait_for(lambda: len(trio.hub.admin("GET", "/admin/deadletters").json) == 3)

    listing = hub_cli(trio.hub, "deadletters", "--platform", "b")
    assert listing.exit_code == 0, listing.output
    ids = [line.split()[0] for line in listing.output.splitlines()[1:]]
    assert len(ids) == 3 and all(i.startswith("evt_") for i in ids)
    assert "HTTP 400" in listing.output
    assert hub_cli(trio.hub, "deadletters", "--platform", "C").output.strip() == "no dead letters"
    assert len(hub_cli(trio.hub, "deadletters", "--limit", "1").output.splitlines()) == 2

    newest = ids[0]  # newest first: "three"
    one = hub_cli(trio.hub, "retry-deadletter", newest)
    assert one.exit_code == 0 and f"dead letter {newest} queued again" in one.output
    wait_for(lambda: trio.b.texts(acked=True) == ["three"])
    assert trio.b.acked("message")[0].webhook_id == newest
    assert hub_cli(trio.hub, "retry-deadletter", newest).exit_code == 1

    rest = hub_cli(trio.hub, "retry-deadletters", "--platform", "B")
    assert rest.exit_code == 0 and "2 dead letter(s) of B queued again" in rest.output
    wait_for(lambda: trio.b.texts(acked=True) == ["three", "one", "two"])
    assert hub_cli(trio.hub, "retry-deadletters", "--platform", "nope").exit_code == 1


def seqs(hub: HubClient, name: str, kind: EventKind) -> list[int]:
    with hub.hub.db.read() as session:
        platform = session.execute(select(Platform).where(Platform.name == name)).scalar_one()
        return list(
            session.execute(
                select(OutboxEvent.seq)
                .where(OutboxEvent.platform_id == platform.id, OutboxEvent.kind == kind)
                .order_by(OutboxEvent.seq)
            ).scalars()
        )


def test_replay_resends_delivered_events_at_the_end_with_new_ids(trio: Trio) -> None:
    for text in ("one", "two", "three"):
        trio.send(trio.a, text)
    trio.b.wait_for_texts(3)
    settled(trio.hub, "B")  # only what the hub knows was delivered is replayed
    originals = trio.b.acked("message")
    from_seq = seqs(trio.hub, "B", EventKind.MESSAGE)[1]

    result = hub_cli(trio.hub, "replay", "--platform", "B", "--from-seq", str(from_seq))
    assert result.exit_code == 0, result.output
    assert "2 event(s) queued again for B" in result.output
    trio.b.wait_for_texts(5)
    copies = trio.b.acked("message")[3:]
    assert [c.json["text"] for c in copies] == ["two", "three"]
    assert [c.body for c in copies] == [c.body for c in originals[1:]]  # byte for byte
    assert not {c.webhook_id for c in copies} & {c.webhook_id for c in originals}
    assert trio.c.texts(acked=True) == ["one", "two", "three"]  # other streams untouched


def test_replay_can_be_scoped_to_a_room_and_a_time(trio: Trio) -> None:
    trio.hub.post(trio.a, "/room", {"id": 11, "name": "side", "type": "public", "users": []})
    trio.send(trio.a, "in lobby")
    trio.send(trio.a, "in side", room=("A", 11))
    wait_for(lambda: len(trio.b.acked("message")) == 2 and len(trio.b.acked("room")) == 1)
    settled(trio.hub, "B")
    trio.b.reset()

    room = hub_cli(trio.hub, "replay", "--platform", "B", "--room", "a:11")
    assert room.exit_code == 0 and "2 event(s)" in room.output  # the room, then its message
    wait_for(lambda: len(trio.b.acked()) == 2)
    assert [(c.kind, c.json["globalId" if c.kind == "room" else "roomGlobalId"]) for c in
            trio.b.acked()] == [("room", "A:11"), ("message", "A:11")]  # fmt: skip

    settled(trio.hub, "B")
    future = hub_cli(trio.hub, "replay", "--platform", "B", "--since", "2999-01-01T00:00+02:00")
    assert future.exit_code == 0 and "0 event(s)" in future.output
    past = hub_cli(trio.hub, "replay", "--platform", "B", "--since", "2000-01-01", "--room", "A:10")
    assert "2 event(s)" in past.output  # the lobby as B got it at setup, and its message
    assert hub_cli(trio.hub, "replay", "--platform", "B", "--since", "soon").exit_code == 2
    assert hub_cli(trio.hub, "replay", "--platform", "nope", "--yes").exit_code == 1
    assert hub_cli(trio.hub, "replay", "--platform", "B", "--room", "no-colon").exit_code == 1
    whole = hub_cli(trio.hub, "replay", "--platform", "B", input="n\n")
    assert whole.exit_code == 1 and "Replay every event" in whole.output


def test_sync_users_prints_progress_the_diff_and_a_summary(platforms, make_hub) -> None:
    a = platforms("A", users=[{"id": 1, "name": "alice"}])
    b = platforms("B", users=[{"id": 1, "name": "bob"}])
    hub = make_hub(a, b)
    wait_for(lambda: len(a.acked("user")) == 1 and len(b.acked("user")) == 1)
    a.users = [{"id": 1, "name": "alicia"}, {"id": 2, "name": "anna"}]
    b.stop()

    dry = hub_cli(hub, "sync-users", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "[1/2] A: 1 new, 1 renamed, 0 vanished, 0 invalid" in dry.output
    assert "[2/2] B: skipped: down: GET" in dry.output
    assert "  + A:2 anna" in dry.output and "  ~ A:1 alice -> alicia" in dry.output
    summary = dry.output.split("PLATFORM")[1].splitlines()
    assert summary[1].split()[:6] == ["A", "1", "1", "0", "0", "ok"]
    assert summary[2].split()[:6] == ["B", "0", "0", "0", "0", "skipped:"]
    users = {u["globalId"]: u["name"] for u in hub.as_platform(a.token, "GET", "/users").json}
    assert users["A:1"] == "alice" and "A:2" not in users

    real = hub_cli(hub, "sync-users", "--platform", "a")
    assert real.exit_code == 0 and "[1/1] A: 1 new, 1 renamed" in real.output
    again = hub_cli(hub, "sync-users", "--platform", "A", "-v")
    assert "[1/1] A: 0 new, 0 renamed, 0 vanished, 0 invalid" in again.output
    unknown = hub_cli(hub, "sync-users", "--platform", "nope")
    assert unknown.exit_code == 1 and "unknown platform" in unknown.output


def test_load_platforms_reports_a_bad_file(platforms, make_hub, tmp_path) -> None:
    hub = make_hub(platforms("A"))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"name": "X"}]))
    result = hub_cli(hub, "load-platforms", "--file", str(broken))
    assert result.exit_code == 1 and "entry 0" in result.output


def test_sync_users_fails_only_when_the_sync_cannot_run() -> None:
    settings = {**FAST, "HUB_AUTO_MIGRATE": False}
    app = create_app({**settings, "HUB_DATABASE_URL": "sqlite:////nonexistent-dir/hub.sqlite3"})
    try:
        result = app.test_cli_runner().invoke(args=["hub", "sync-users"])
    finally:
        app.extensions["hub"].close()
    assert result.exit_code == 1 and "could not run: database error" in result.output


def test_commands_refuse_an_app_loaded_with_its_server_threads(trio: Trio) -> None:
    """``--app wsgi`` starts the server's threads; a command must not run beside them."""
    result = trio.hub.app.test_cli_runner().invoke(args=["hub", "platforms"])
    assert result.exit_code == 2
    assert "run commands with --app hub" in result.output
    assert hub_cli(trio.hub, "platforms").exit_code == 0  # --app hub: the same command runs
