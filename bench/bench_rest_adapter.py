"""Per-call cost of the hub's REST adapter against the benchmark receiver: one in-order stream.

The contract has the hub send a platform's event N+1 only after N is answered, so a replay to one
platform is bounded by one client's sequential round trips. This script starts
``bench/receiver.py`` (or uses ``--url``) and posts a message-sized body to it, one call at a
time on one kept-alive connection, for ``--seconds`` per client, with:

- ``urllib3``: a bare ``PoolManager.request`` (constant headers, nothing signed);
- ``urllib3 + sign``: what the hub's adapter did up to this script's commit (urllib3, a fresh
  ``Webhook.sign`` and the header dict on every call);
- ``http.client``: a bare persistent ``HTTPConnection`` (constant headers, nothing signed);
- ``RestAdapter``: ``adapters.rest.RestAdapter.send``, the exact code the hub delivers with
  (signing, headers and the classification of the answer included).

Clients take turns for ``--rounds`` rounds (so a burst of load elsewhere on the machine hits all
of them alike); it prints each round and the median calls/s of each client.

    flock /tmp/bench.lock .venv/bin/python bench/bench_rest_adapter.py
    .venv/bin/python bench/bench_rest_adapter.py --receiver /tmp/old_receiver.py  # another one
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.base import OutgoingEvent, PlatformTarget  # noqa: E402
from adapters.rest import RestAdapter  # noqa: E402

TOKEN = "bench-token-B"
# A message as the hub renders it (hub.routing.message_payload), ~400 bytes.
PAYLOAD = {
    "id": 1,
    "roomOriginalPlatform": "A",
    "roomId": 1,
    "roomGlobalId": "A:1",
    "senderId": 1,
    "senderPlatform": "A",
    "senderGlobalId": "A:1",
    "senderName": "user 1 of A",
    "text": "",
    "sentAt": "2026-12-02T07:00:00.000000+00:00",
    "recipients": [1],
    "attachments": [],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body(i: int) -> str:
    return json.dumps({**PAYLOAD, "id": i, "text": f"bench-{i:07d} message"}, ensure_ascii=False)


def constant_headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        "webhook-id": f"evt_{uuid.uuid4().hex}",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }


def client_urllib3(endpoint: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    url, headers = endpoint + "message", constant_headers()

    def post(i: int) -> None:
        pool.request("POST", url, body=body(i).encode(), headers=headers)

    return post, pool.clear


def client_urllib3_signed(endpoint: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """The adapter as it was on urllib3 (commit f155787), minus the error handling."""
    pool = urllib3.PoolManager(
        maxsize=1, retries=False, timeout=urllib3.Timeout(total=10.0),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    signer = Webhook(TOKEN.encode())
    url = endpoint + "message"

    def post(i: int) -> None:
        event_id, payload, now = f"evt_{uuid.uuid4().hex}", body(i), datetime.now(UTC)
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(event_id, now, payload),
        }
        answer = pool.request("POST", url, body=payload.encode(), headers=headers, redirect=False)
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")
        answer.data  # noqa: B018 - read the body, as the adapter did

    return post, pool.clear


def client_http_client(endpoint: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path, headers = parts.path + "message", constant_headers()

    def post(i: int) -> None:
        connection.request("POST", path, body=body(i).encode(), headers=headers)
        connection.getresponse().read()

    return post, connection.close


def client_rest_adapter(endpoint: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    adapter = RestAdapter(PlatformTarget(2, "B", "rest", endpoint, TOKEN), 10.0)

    def post(i: int) -> None:
        adapter.send(OutgoingEvent(f"evt_{uuid.uuid4().hex}", i, "message", body(i)))

    return post, adapter.close


CLIENTS = {
    "urllib3": client_urllib3,
    "urllib3 + sign (old adapter)": client_urllib3_signed,
    "http.client": client_http_client,
    "RestAdapter (hub)": client_rest_adapter,
}


def measure(make: Callable, endpoint: str, seconds: float) -> float:
    post, close = make(endpoint)
    try:
        for i in range(50):  # connect and warm up
            post(i)
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(100):
                post(count)
                count += 1
        return count / elapsed
    finally:
        close()


def start_receiver(receiver: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(receiver), "--port", str(port), "--token", TOKEN],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{receiver} did not start") from None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per client and round (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--receiver", type=Path, default=ROOT / "bench" / "receiver.py", help="receiver script"
    )
    parser.add_argument("--url", help="post to this endpoint instead (e.g. http://h:p/api/)")
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="comma-separated subset of: " + ", ".join(CLIENTS),
    )
    args = parser.parse_args(argv)
    clients = {name: CLIENTS[name] for name in args.clients.split(",")}
    proc = None
    if args.url:
        endpoint = args.url
    else:
        port = free_port()
        proc = start_receiver(args.receiver, port)
        endpoint = f"http://127.0.0.1:{port}/api/"
    print(
        f"one in-order stream to {endpoint} ({args.receiver.name if proc else 'external'}),"
        f" {args.seconds:g}s x {args.rounds} rounds per client, Python {sys.version.split()[0]}"
    )
    results: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for round_ in range(1, args.rounds + 1):
            line = []
            for name, make in clients.items():
                rate = measure(make, endpoint, args.seconds)
                results[name].append(rate)
                line.append(f"{name} {rate:.0f}")
            print(f"round {round_}: " + ", ".join(line), flush=True)
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    width = max(len(n) for n in results)
    print(f"\n{'client':<{width}}  calls/s (median)  min-max")
    for name, rates in results.items():
        print(
            f"{name:<{width}}  {statistics.median(rates):16.0f}  {min(rates):.0f}-{max(rates):.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
