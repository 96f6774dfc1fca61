"""Real time over a real server: WebSocket frames, acks and resume, calls, long polling, direct."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import websocket
from sqlalchemy import func, select, update

from adapters.websocket import keeper as stream_keeper
from adapters.websocket import view as websocket_view
from adapters.websocket.connections import (
    SocketConnection,
    SocketRegistry,
    next_connection_order,
)
from hub.db import Database
from hub.models import EventKind, Message, OutboxEvent, Platform
from hub.outbox import enqueue as outbox
from tests.support.loopback_platform import wait_for
from tests.support.websockets import close_code


class Realtime:
    """REST platform A (a loopback server) and websocket platforms W1, W2 on a served hub."""

    def __init__(self, hub: Any, url: str, a: Any) -> None:
        self.hub, self.url, self.a = hub, url, a
        self.ws_url = url.replace("http://", "ws://") + "/ws"

    def connect(self, token: str, **kwargs: Any) -> websocket.WebSocket:
        return websocket.create_connection(
            self.ws_url, timeout=5, header=[f"Authorization: Bearer {token}"], **kwargs
        )

    def send(self, text: str, **extra: Any) -> requests.Response:
        body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": text, **extra}
        return requests.post(
            f"{self.url}/message",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {self.a.token}"},
        )

    def bus(self, token: str, last: int | None, timeout: float | None = None) -> dict:
        body: dict[str, Any] = {"last_message": last}
        if timeout is not None:
            body["timeout"] = timeout
        answer = requests.post(
            f"{self.url}/bus", json=body, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def frames(ws: websocket.WebSocket, count: int) -> list[dict]:
    return [json.loads(ws.recv()) for _ in range(count)]


def realtime(platforms: Any, make_hub: Any, serve: Any, **config: Any) -> Realtime:
    a = platforms("A")
    entries = [
        a.registry_entry(),
        {"name": "W1", "token": "token-W1", "transport": "websocket"},
        {"name": "W2", "token": "token-W2", "transport": "websocket"},
        {"name": "P", "token": "token-P", "transport": "poll"},
    ]
    hub = make_hub(entries=entries, HUB_WS_PING_INTERVAL=2, HUB_POLL_TIMEOUT=10, **config)
    for token in ("token-A", "token-W1", "token-W2", "token-P"):
        hub.as_platform(token, "POST", "/user", json={"id": 1, "name": f"user of {token}"})
    room = {
        "id": 1,
        "name": "r",
        "type": "private",
        "users": [{"A": [1]}, {"W1": [1]}, {"W2": [1]}, {"P": [1]}],
    }
    assert hub.post(a, "/room", room).status_code == 201
    return Realtime(hub, serve(hub.app), a)


@pytest.fixture
def rt(platforms, make_hub, serve) -> Realtime:
    return realtime(platforms, make_hub, serve)


def pending(rt: Realtime, platform: str) -> int:
    listing = rt.hub.admin("GET", "/admin/platforms").json
    return next(p["queueDepth"] for p in listing if p["name"] == platform)


def test_a_wrong_token_is_refused_with_a_close_reason(rt: Realtime) -> None:
    assert close_code(rt.connect("wrong")) == (1008, "unknown or missing token")
    anonymous = websocket.create_connection(rt.ws_url, timeout=5)
    assert close_code(anonymous)[0] == 1008
    # A rest platform's events are pushed to its endpoint, not pulled.
    code, reason = close_code(rt.connect(rt.a.token))
    assert code == 1008 and "transport rest" in reason


def test_the_stream_arrives_as_frames_in_seq_order(rt: Realtime) -> None:
    ws = rt.connect("token-W1")
    # What was queued before connecting: 3 users (A, W2, P) and the room.
    backlog = frames(ws, 4)
    assert [f["event"] for f in backlog] == ["user", "user", "user", "room"]
    for text in ("one", "two", "three"):
        assert rt.send(text).status_code == 202
    live = frames(ws, 3)
    seqs = [f["seq"] for f in backlog + live]
    assert seqs == sorted(seqs) and len(set(seqs)) == 7
    assert [f["data"]["text"] for f in live] == ["one", "two", "three"]
    assert live[0]["data"]["recipients"] == [1] and live[0]["data"]["roomGlobalId"] == "A:1"
    ws.close()


def test_unacknowledged_frames_are_sent_again_in_order_after_a_reconnect(rt: Realtime) -> None:
    ws = rt.connect("token-W1")
    backlog = frames(ws, 4)
    for text in ("m1", "m2", "m3"):
        rt.send(text)
    live = frames(ws, 3)
    ws.send(json.dumps({"ack": live[0]["seq"]}))  # acks the backlog and m1
    wait_for(lambda: pending(rt, "W1") == 2, message="cumulative ack stored")
    ws.close()
    rt.send("m4")
    again = rt.connect("token-W1")
    resent = frames(again, 3)
    assert [f["data"]["text"] for f in resent] == ["m2", "m3", "m4"]
    assert [f["seq"] for f in resent] == [live[1]["seq"], live[2]["seq"], live[2]["seq"] + 1]
    assert backlog[0]["seq"] < live[0]["seq"]
    again.send(json.dumps({"ack": resent[-1]["seq"]}))
    wait_for(lambda: pending(rt, "W1") == 0)
    again.close()


def test_a_second_connection_takes_over_cleanly(rt: Realtime) -> None:
    first = rt.connect("token-W1")
    frames(first, 4)
    second = rt.connect("token-W1")
    assert len(frames(second, 4)) == 4  # nothing was acked: the new socket gets it all
    assert close_code(first) == (4000, "replaced by a newer connection of this platform")
    rt.send("after takeover")
    assert frames(second, 1)[0]["data"]["text"] == "after takeover"
    second.close()


def test_a_session_that_starts_after_a_newer_connection_s_gives_way() -> None:
    """A session's thread can reach its start after a later connection of the same platform
    has started (it was slower): it must not take the stream from the newer one."""
    registry = SocketRegistry()
    older = SocketConnection(SimpleNamespace(connected=True), 7, "W7")
    newer = SocketConnection(SimpleNamespace(connected=True), 7, "W7")
    with registry.starting(newer) as newest:
        assert newest
        registry.attach(newer)
    with registry.starting(older) as newest:
        assert not newest  # its session closes it with 4000 instead of attaching
    assert registry.is_live(7) and not newer.closed.is_set()
    other = SocketConnection(SimpleNamespace(connected=True), 8, "W8")
    with registry.starting(other) as newest:
        assert newest  # another platform: unaffected


def test_a_connection_slow_to_reach_its_session_still_counts_as_the_older(
    rt: Realtime, monkeypatch
) -> None:
    """The client opens a second socket once the first one's handshake is answered; the first
    one's thread is held up after the handshake until the second is live (as a descheduled
    thread would be). The second, opened later, must keep the stream."""
    second_live = threading.Event()
    orders: list[int] = []

    def numbered() -> int:
        orders.append(next_connection_order())  # in the order the requests came in
        return orders[-1]

    def held_up(ws: Any, platform_id: int, name: str, order: int) -> SocketConnection:
        # The first connection (by request, whichever thread gets here first) waits until the
        # second has taken the stream.
        if order == orders[0]:
            second_live.wait(10)
        return SocketConnection(ws, platform_id, name, order)

    monkeypatch.setattr(websocket_view, "next_connection_order", numbered)
    monkeypatch.setattr(websocket_view, "SocketConnection", held_up)
    first = rt.connect("token-W1")  # returns once the handshake is answered
    second = rt.connect("token-W1")
    assert len(frames(second, 4)) == 4  # its session started while the first one's waited
    second_live.set()
    assert close_code(first)[0] == 4000  # the first gives way, however late its session came
    rt.send("after both")
    assert frames(second, 1)[0]["data"]["text"] == "after both"
    second.close()


def test_calls_over_the_socket_go_through_the_same_ingest(rt: Realtime) -> None:
    ws = rt.connect("token-W1")
    frames(ws, 4)
    call = {
        "ref": "r-1",
        "call": "message",
        "data": {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "from ws"},
    }
    ws.send(json.dumps(call))
    reply = json.loads(ws.recv())
    assert reply["ref"] == "r-1" and reply["status"] == 202 and isinstance(reply["id"], int)
    wait_for(lambda: rt.a.texts(acked=True) == ["from ws"], message="A got the WS message")
    ws.send(json.dumps({"ref": "r-2", "call": "user", "data": {"id": 2}}))
    refused = json.loads(ws.recv())
    assert refused["ref"] == "r-2" and refused["status"] == 400 and "name" in refused["errors"]
    ws.send(
        json.dumps(
            {
                "ref": "r-3",
                "call": "room",
                "data": {"id": 5, "name": "x", "type": "private", "users": [{"A": [99]}]},
            }
        )
    )
    unknown = json.loads(ws.recv())
    assert unknown["status"] == 400 and "A:99" in unknown["message"]
    ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"hello": 1}',
        '{"ack": "x"}',
        '{"ack": -1}',
        '{"ref": 1, "call": "launch", "data": {}}',
    ],
)
def test_a_malformed_frame_gets_an_error_frame_and_the_socket_stays_open(
    rt: Realtime, frame: str
) -> None:
    ws = rt.connect("token-W2")
    frames(ws, 4)
    ws.send(frame)
    error = json.loads(ws.recv())
    assert error["status"] == 400
    rt.send("still open")
    assert frames(ws, 1)[0]["data"]["text"] == "still open"
    ws.close()


def test_a_frame_over_the_body_limit_closes_the_socket_and_stores_nothing(
    platforms, make_hub, serve
) -> None:
    rt = realtime(platforms, make_hub, serve, HUB_MAX_BODY_BYTES=4096)
    ws = rt.connect("token-W2")
    frames(ws, 4)
    data = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "x" * 3000}
    ws.send(json.dumps({"ref": 1, "call": "message", "data": data}))  # under the limit
    assert json.loads(ws.recv())["status"] == 202
    with rt.hub.hub.db.read() as session:
        stored = session.execute(select(func.count()).select_from(Message)).scalar_one()
    too_big = {**data, "text": "x" * 5000}
    ws.send(json.dumps({"ref": 2, "call": "message", "data": too_big}))
    assert close_code(ws) == (1009, "Message is too big")
    with rt.hub.hub.db.read() as session:
        assert session.execute(select(func.count()).select_from(Message)).scalar_one() == stored
    # simple-websocket closes the socket without waking the session's receive: the keeper's
    # check (every HUB_LEASE_SECONDS / 3, 5 s) ends it, not the receive's 30 s timeout.
    wait_for(lambda: len(rt.hub.hub.sockets) == 0, timeout=15, message="the cut session ended")
    again = rt.connect("token-W2")
    rt.send("after the big one")
    texts = [frame["data"].get("text") for frame in frames(again, 5)]  # 4 unacked first
    assert texts[-1] == "after the big one"
    again.close()


def test_idle_sockets_are_pinged(rt: Realtime) -> None:
    ws = rt.connect("token-W2")
    frames(ws, 4)
    opcode, _ = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PING
    ws.close()


def test_long_poll_answers_at_once_then_acks_with_last_message(rt: Realtime) -> None:
    first = rt.bus("token-P", None)
    assert [m["type"] for m in first["messages"]] == ["user", "user", "user", "room"]
    assert first["messages"][-1]["roomType"] == "private"  # "type" is the event's kind here
    assert first["last_message"] == first["messages"][-1]["message_id"]
    assert pending(rt, "P") == 4
    rt.send("polled")
    second = rt.bus("token-P", first["last_message"])
    assert [m["text"] for m in second["messages"]] == ["polled"]
    assert pending(rt, "P") == 1  # the first four were acknowledged by asking after them


def test_long_poll_wakes_when_an_event_arrives_and_times_out_empty(rt: Realtime) -> None:
    last = rt.bus("token-P", None)["last_message"]
    started = time.monotonic()
    empty = rt.bus("token-P", last, timeout=0.5)
    assert empty == {"messages": [], "last_message": last}
    assert time.monotonic() - started >= 0.5

    answered: dict[str, Any] = {}

    def poll() -> None:
        answered["body"] = rt.bus("token-P", last, timeout=10)

    poller = threading.Thread(target=poll)
    poller.start()
    wait_for(lambda: pending(rt, "P") == 0)  # the poller acked; now it waits
    rt.send("wake up")
    poller.join(15)
    # Not woken, the poll would answer empty at its 10 s timeout (its re-check is a minute).
    assert [m["text"] for m in answered["body"]["messages"]] == ["wake up"]


def test_bus_refuses_rest_platforms_and_bad_cursors(rt: Realtime) -> None:
    rest = requests.post(
        f"{rt.url}/bus",
        json={"last_message": None},
        timeout=5,
        headers={"Authorization": f"Bearer {rt.a.token}"},
    )
    assert rest.status_code == 409 and "transport rest" in rest.json()["message"]
    bad = requests.post(
        f"{rt.url}/bus",
        json={"last_message": "x"},
        timeout=5,
        headers={"Authorization": "Bearer token-P"},
    )
    assert bad.status_code == 400 and "last_message" in bad.json()["errors"]


def count_rows(rt: Realtime) -> tuple[int, int]:
    with rt.hub.hub.db.read() as session:
        return (
            session.execute(select(func.count()).select_from(Message)).scalar(),
            session.execute(select(func.count()).select_from(OutboxEvent)).scalar(),
        )


def test_direct_messages_reach_only_live_sockets_and_are_never_stored(rt: Realtime) -> None:
    ws = rt.connect("token-W1")
    frames(ws, 4)
    before = count_rows(rt)
    answer = rt.send("typing…", direct=True)
    assert answer.status_code == 202
    body = answer.json()
    assert body["stored"] is False and body["reached"] == 1 and body["receivers"] == 3
    frame = json.loads(ws.recv())
    assert frame["seq"] is None and frame["direct"] is True
    assert frame["data"]["text"] == "typing…"
    assert count_rows(rt) == before
    ws.close()
    # No message for the sender's platform: a marker on its stream comes first.
    assert "message" not in [c.kind for c in rt.hub.before_marker(rt.a, via="token-W2")]


def test_a_platform_that_stops_reading_holds_up_no_direct_message(rt: Realtime) -> None:
    stuck = rt.connect("token-W2")  # never read: its buffers fill up
    wait_for(lambda: rt.hub.hub.sockets.is_live(platform_row(rt, "W2").id), message="W2 live")
    deadline, sent = time.monotonic() + 60, 0
    while True:
        answer = rt.send("y" * 65_000, direct=True)  # each answer comes at once, or times out
        assert answer.status_code == 202, answer.text
        sent += 1
        if answer.json()["reached"] == 0:  # W2's socket is full: sending would have waited
            break
        assert answer.json()["reached"] == 1
        assert time.monotonic() < deadline and sent < 500, "W2's socket never filled up"
    assert sent > 1
    stuck.close()


def test_notifications_reach_every_transport_and_404_means_not_taken(rt: Realtime) -> None:
    rt.a.respond_with(404, kind="notification")
    ws = rt.connect("token-W1")
    frames(ws, 4)
    answer = rt.hub.admin(
        "POST",
        "/notification",
        json={"title": "Maintenance", "body": "at noon", "priority": 2, "to": "$all"},
    )
    assert answer.status_code == 202 and answer.json["receivers"] == 4
    frame = json.loads(ws.recv())
    assert frame["event"] == "notification" and frame["data"]["title"] == "Maintenance"
    polled = rt.bus("token-P", None)["messages"]
    assert polled[-1]["type"] == "notification" and polled[-1]["priority"] == 2
    wait_for(lambda: len(rt.a.received("notification")) == 1)
    wait_for(lambda: pending(rt, "A") == 0)
    assert rt.hub.admin("GET", "/admin/deadletters").json == []
    again = rt.hub.admin(
        "POST", "/notification", json={"title": "Again", "body": "", "to": ["A", "W1:1"]}
    )
    assert again.json["receivers"] == 1  # A takes none now; W1's user 1 is addressed
    to_user = json.loads(ws.recv())
    assert to_user["data"]["recipients"] == [1] and to_user["data"]["title"] == "Again"
    ws.close()


def test_notifications_name_unknown_addressees(rt: Realtime) -> None:
    answer = rt.hub.post(
        rt.a, "/notification", {"title": "t", "body": "b", "to": ["Nowhere", "W1:42"]}
    )
    assert answer.status_code == 404
    assert "Nowhere" in answer.json["message"] and "W1:42" in answer.json["message"]
    bad = rt.hub.post(
        rt.a, "/notification", {"title": "t", "body": "b", "priority": 7, "to": "everyone"}
    )
    assert bad.status_code == 400 and {"priority", "to"} <= set(bad.json["errors"])


def test_events_a_pulling_platform_never_takes_become_dead_letters(platforms, make_hub) -> None:
    a = platforms("A")
    hub = make_hub(
        entries=[a.registry_entry(), {"name": "P", "token": "token-P", "transport": "poll"}],
        HUB_DEAD_LETTER_AFTER=0.3,
        HUB_HOUSEKEEPING_INTERVAL=0.1,
    )
    hub.post(a, "/user", {"id": 1, "name": "alice"})
    wait_for(
        lambda: len(hub.admin("GET", "/admin/deadletters?platform=P").json) == 1,
        message="P's untaken user event dead-lettered after the maximum age",
    )
    dead = hub.admin("GET", "/admin/deadletters?platform=P").json[0]
    assert dead["event"] == "user" and "not taken" in dead["lastError"]


def platform_row(rt: Realtime, name: str) -> Any:
    with rt.hub.hub.db.read() as session:
        return session.execute(select(Platform).where(Platform.name == name)).scalar_one()


def test_acks_of_several_sockets_are_written_shortly_while_they_stay_open(rt: Realtime) -> None:
    w1, w2 = rt.connect("token-W1"), rt.connect("token-W2")
    last = {}
    for name, ws in (("W1", w1), ("W2", w2)):
        last[name] = frames(ws, 4)[-1]["seq"]
        for seq in range(1, last[name] + 1):  # one frame per event, as a platform may ack
            ws.send(json.dumps({"ack": seq}))
    # Kept in memory, then written for both platforms within the batch interval.
    wait_for(lambda: pending(rt, "W1") == pending(rt, "W2") == 0, timeout=3)
    rt.send("after the acks")
    for ws in (w1, w2):
        frame = frames(ws, 1)[0]
        assert frame["data"]["text"] == "after the acks"
        assert frame["seq"] > last["W1" if ws is w1 else "W2"]
    w1.close()
    w2.close()


def test_pending_acks_are_written_when_the_socket_closes(
    rt: Realtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_keeper, "ACK_FLUSH_SECONDS", 60.0)  # the flusher stays out
    ws = rt.connect("token-W1")
    seq = frames(ws, 4)[-1]["seq"]
    ws.send(json.dumps({"ack": seq}))
    ws.close()
    wait_for(lambda: len(rt.hub.hub.sockets) == 0, message="the session ended")
    assert pending(rt, "W1") == 0
    again = rt.connect("token-W1")
    rt.send("only this")
    assert frames(again, 1)[0]["data"]["text"] == "only this"  # nothing acked came again
    again.close()


@pytest.fixture
def rt_short_lease(platforms, make_hub, serve) -> Realtime:
    # Leases renewed every 0.2 s, so that renewal and takeover show within a test.
    return realtime(platforms, make_hub, serve, HUB_LEASE_SECONDS=0.6)


def test_a_platform_that_stops_reading_is_cut_then_resumes_after_its_last_ack(
    platforms, make_hub, serve
) -> None:
    rt = realtime(platforms, make_hub, serve, HUB_LEASE_SECONDS=0.6, HUB_WS_SEND_TIMEOUT=1)
    small_window = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
    stuck = rt.connect("token-W2", sockopt=small_window)
    w2 = platform_row(rt, "W2").id
    wait_for(lambda: rt.hub.hub.sockets.is_live(w2), message="W2's session started")
    connection = rt.hub.hub.sockets._live[w2]
    sent = 0  # the hub's send buffer is 512 KB: ~10 frames of 60 KB fill it
    while connection.stalled_for() < 0.05:  # post until the pusher is stuck in a send
        assert rt.send(f"z{sent:04d}" + "z" * 60_000).status_code == 202
        sent += 1
        assert sent < 40, "W2's socket never filled up: is its send buffer bounded?"
    wait_for(lambda: not rt.hub.hub.sockets.is_live(w2), timeout=5, message="W2 was cut")
    wait_for(lambda: str(platform_row(rt, "W2").health) == "down", message="its session ended")
    assert platform_row(rt, "W2").last_error == "stopped reading: a frame waited over 1 s"
    stuck.close()
    again = rt.connect("token-W2")  # nothing was acked: all of it again, in order
    texts = [f["data"].get("text", "") for f in frames(again, 4 + sent)]
    assert [t[:5] for t in texts if t.startswith("z")] == [f"z{i:04d}" for i in range(sent)]
    again.close()


def test_one_renewal_keeps_every_socket_s_lease(rt_short_lease: Realtime) -> None:
    rt = rt_short_lease
    w1, w2 = rt.connect("token-W1"), rt.connect("token-W2")
    frames(w1, 4)
    frames(w2, 4)
    first = {name: platform_row(rt, name) for name in ("W1", "W2")}
    assert "/ws-" in first["W1"].lease_owner and "/ws-" in first["W2"].lease_owner
    wait_for(
        lambda: all(
            platform_row(rt, n).lease_until > first[n].lease_until + timedelta(seconds=0.5)
            for n in ("W1", "W2")
        ),
        timeout=5,
        message="both leases renewed, more than once",
    )
    assert {n: platform_row(rt, n).lease_owner for n in first} == {
        n: row.lease_owner for n, row in first.items()
    }
    rt.send("still served")
    assert frames(w1, 1)[0]["data"]["text"] == frames(w2, 1)[0]["data"]["text"] == "still served"
    w1.close()
    w2.close()


def test_a_socket_whose_lease_another_process_took_is_closed(rt_short_lease: Realtime) -> None:
    rt = rt_short_lease
    ws, other = rt.connect("token-W1"), rt.connect("token-W2")
    frames(ws, 4)
    frames(other, 4)
    elsewhere = "another-host:1:0000/ws-000000"
    with rt.hub.hub.db.write() as session:  # what a socket of W1 in another process does
        session.execute(update(Platform).where(Platform.name == "W1").values(lease_owner=elsewhere))
    assert close_code(ws) == (4000, "replaced by a newer connection")
    wait_for(lambda: len(rt.hub.hub.sockets) == 1, message="W1's session ended")
    row = platform_row(rt, "W1")
    assert row.lease_owner == elsewhere and str(row.health) == "up"  # the other socket's
    rt.send("W2 goes on")
    assert frames(other, 1)[0]["data"]["text"] == "W2 goes on"
    other.close()


def test_events_committed_by_another_process_reach_the_socket(rt_short_lease: Realtime) -> None:
    rt = rt_short_lease
    ws = rt.connect("token-W1")
    frames(ws, 4)
    w1 = platform_row(rt, "W1").id
    other = Database(rt.hub.hub.db.url)  # no wake-up reaches this process from it
    try:
        with other.write() as session:
            outbox.enqueue(session, w1, EventKind.NOTIFICATION, [{"title": "from elsewhere"}])
    finally:
        other.dispose()
    # The safety poll looks every HUB_WAKE_INTERVAL (2 s); without it the pusher's own
    # re-check would take 60 s, past the socket's 5 s timeout.
    frame = frames(ws, 1)[0]
    assert frame["event"] == "notification" and frame["data"]["title"] == "from elsewhere"
    ws.close()
