"""The benchmarks' receiving platform (``bench/receiver.py``) answers and records what the
delivery and real-time benchmarks rely on, for the hub's adapter and for ``requests`` alike."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters import OutgoingEvent, Permanent, PlatformTarget
from adapters.rest import RestAdapter
from tests.support.loopback_platform import wait_for

RECEIVER = Path(__file__).resolve().parent.parent / "bench" / "receiver.py"
TOKEN = "tok-B"


def can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def receiver() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", str(port), "--token", TOKEN],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: proc.poll() is not None or can_connect(port), message="the receiver")
        assert proc.poll() is None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_records_messages_and_serves_stats(receiver: str) -> None:
    adapter = RestAdapter(PlatformTarget(2, "B", "rest", receiver + "/api/", TOKEN), 5.0)
    try:
        assert adapter.fetch_users() == []
        for n in range(3):
            payload = json.dumps({"id": n, "text": f"t{n} é"}, ensure_ascii=False)
            adapter.send(OutgoingEvent(f"evt_{n}", n, "message", payload))
        adapter.send(OutgoingEvent("evt_u", 9, "user", '{"id": 1}'))
    finally:
        adapter.close()
    session = requests.Session()
    answer = session.post(
        receiver + "/api/message", data=b"not json", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200
    assert session.post(receiver + "/api/message", data=b"{}").status_code == 401
    assert session.get(receiver + "/nowhere").status_code == 404
    stats = session.get(receiver + "/stats").json()
    assert {k: stats[k] for k in ("count", "requests", "kinds", "unauthorized", "badJson")} == {
        "count": 3,
        "requests": 5,
        "kinds": {"message": 4, "user": 1},
        "unauthorized": 1,
        "badJson": 1,
    }
    assert json.loads(stats["sample"]) == {"id": 0, "text": "t0 é"}
    assert "messages" not in stats
    since = session.get(receiver + "/stats?since=1").json()
    assert since["since"] == 1
    assert [m[1:] for m in since["messages"]] == [["t1 é", 1], ["t2 é", 2]]
    assert all(isinstance(m[0], float) for m in since["messages"])


def test_wrong_token_is_refused_to_the_adapter(receiver: str) -> None:
    adapter = RestAdapter(PlatformTarget(2, "B", "rest", receiver + "/api/", "wrong"), 5.0)
    try:
        with pytest.raises(Permanent, match="HTTP 401"):
            adapter.send(OutgoingEvent("evt_1", 1, "message", "{}"))
    finally:
        adapter.close()
