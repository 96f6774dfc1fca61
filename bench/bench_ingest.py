"""CPU cost of one ``POST /message`` inside the hub process, without HTTP or delivery.

The delivery benchmark measures the hub as a whole; this one isolates the ingest path (Flask,
flask-smorest and marshmallow, authentication, the routing reads, the message and outbox
writes, the commit) so that a change to it can be compared in seconds, on a per-thread CPU
clock that other processes on the machine barely disturb.

It builds the hub with ``create_app`` on a temporary SQLite file, three platforms A, B and C
(delivery off: nothing is sent), one user each and a private room of the three, then posts
``--messages`` messages from A through Flask's test client, one at a time, and prints the CPU
time and wall time per message. ``--profile`` adds the top of a cProfile run.

    .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --messages 3000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": "hello from A"}


def build_client(workdir: Path):  # type: ignore[no-untyped-def]
    """A hub on a fresh SQLite file with A, B, C, a user each and room A:1 of the three."""
    sys.path.insert(0, str(ROOT))
    from hub import create_app

    registry = workdir / "platforms.json"
    registry.write_text(
        json.dumps(
            [
                {"name": n, "token": f"token-{n}", "endpoint": f"http://127.0.0.1:9/{n}/"}
                for n in "ABC"
            ]
        )
    )
    app = create_app(
        {
            "HUB_DATABASE_URL": f"sqlite:///{workdir / 'hub.sqlite3'}",
            "HUB_PLATFORMS_FILE": str(registry),
            "HUB_DELIVERY": False,
            "HUB_SCHEDULER": False,
            "HUB_LOG_LEVEL": "WARNING",
        }
    )
    if hasattr(app.extensions["hub"], "serve"):  # the app starts nothing until it serves
        app.extensions["hub"].serve()  # loads platforms.json; delivery and scheduler are off
    client = app.test_client()
    for name in "ABC":
        answer = client.post("/user", json={"id": 1, "name": f"user of {name}"}, headers=auth(name))
        assert answer.status_code in (200, 201), answer.json
    members = [{"A": [1]}, {"B": [1]}, {"C": [1]}]
    room = {"id": 1, "name": "bench", "type": "private", "users": members}
    answer = client.post("/room", json=room, headers=auth("A"))
    assert answer.status_code in (200, 201), answer.json
    return app, client


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{name}"}


def post_messages(client, count: int) -> None:  # type: ignore[no-untyped-def]
    headers = auth("A")
    for _ in range(count):
        answer = client.post("/message", json=BODY, headers=headers)
        if answer.status_code != 202:
            raise SystemExit(f"POST /message answered {answer.status_code}: {answer.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages timed (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="messages before timing (200)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile top 30")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-ingest-") as tmp:
        app, client = build_client(Path(tmp))
        post_messages(client, args.warmup)
        cpu, wall = time.thread_time(), time.perf_counter()
        post_messages(client, args.messages)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        print(f"POST /message in process, {args.messages} sequential, SQLite, delivery off:")
        print(f"  CPU  per message: {1e6 * cpu / args.messages:7.0f} us")
        print(f"  wall per message: {1e6 * wall / args.messages:7.0f} us")
        print(f"  => at most {args.messages / cpu:.0f} messages/s of ingest on one core")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            post_messages(client, args.messages)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        app.extensions["hub"].close()


if __name__ == "__main__":
    main()
