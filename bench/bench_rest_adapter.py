"""Per-call cost of the hub's REST adapter against the benchmark receiver: one in-order stream.

The contract has the hub send a platform's event N+1 only after N is answered, so a replay to one
platform is bounded by one client's sequential round trips. This script starts
``bench/receiver.py`` (or uses ``--url``) and posts a message-sized body to it, one call at a
time on one kept-alive connection, for ``--seconds`` per client, with:

- ``old``: the hand-written HTTP/1.1 adapter of commit 0e4e031, loaded from git into a
  temporary module (``git show 0e4e031:adapters/rest.py``), so the comparison stays
  reproducible after that file is gone;
- ``new``: ``adapters.rest.RestAdapter.send``, the code the hub delivers with (httptools
  parsing the answer, the request built as bytes, ``Webhook.sign``, the classification);
- ``h11``: the adapter of commit 0689baf on h11 (one ``h11.Connection`` per socket reused with
  ``start_next_cycle``, one ``sendall``), loaded from git like ``old``;
- ``httptools bare``, ``h11 bare``: each library over one socket, constant headers, nothing
  signed: its floor;
- ``urllib3 bare``: a bare ``HTTPConnectionPool.urlopen``, the other library measured.

h11 is no longer one of the hub's requirements (wsproto, under flask-sock, still brings it):
without it, its two clients are left out.

Clients take turns within each of ``--rounds`` rounds, the order rotated every round (so a burst
of load elsewhere on the machine hits all of them alike); it prints each round, the median
calls/s and microseconds per call of each client, and each one's calls/s over old's in the same
round (median and range over the rounds): the bar is new costing at most +20% a call.

    flock /tmp/bench.lock .venv/bin/python bench/bench_rest_adapter.py --rounds 7
"""

from __future__ import annotations

import argparse
import importlib.util
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
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import httptools
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.base import OutgoingEvent, PlatformTarget  # noqa: E402
from adapters.rest import RestAdapter  # noqa: E402

OLD_COMMIT = "0e4e031"  # the last commit with the hand-written client
H11_COMMIT = "0689baf"  # the last commit with the h11 client
TOKEN = "bench-token-B"
# A message as the hub renders it (hub.routing.messages.message_payload), ~400 bytes.
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
Client = tuple[Callable[[int], None], Callable[[], None]]  # post(i), close()


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


def load_from_git(
    commit: str, path: str, name: str, imports: dict[str, str] | None = None
) -> ModuleType:
    """``path`` as of ``commit``, as a module ``name`` of its own (registered, so a later one
    can import it), each of ``imports`` (an import line: its replacement) rewritten first."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for line, replacement in (imports or {}).items():
        assert line in source, f"{commit}:{path} has no {line!r}"
        source = source.replace(line, replacement)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


def load_old_adapter() -> ModuleType:
    """``adapters/rest.py`` as of ``OLD_COMMIT`` (it imports ``adapters.base`` and
    ``adapters.errors``, which are still there)."""
    return load_from_git(OLD_COMMIT, "adapters/rest.py", "bench_old_rest_adapter")


def load_h11_adapter() -> ModuleType:
    """``adapters/rest/adapter.py`` of ``H11_COMMIT`` on its ``client.py`` (h11); the other
    modules of the package it imports are unchanged since."""
    load_from_git(H11_COMMIT, "adapters/rest/client.py", "bench_h11_rest_client")
    line = "from adapters.rest.client import"
    return load_from_git(
        H11_COMMIT,
        "adapters/rest/adapter.py",
        "bench_h11_rest_adapter",
        {line: "from bench_h11_rest_client import"},
    )


def adapter_client(adapter_class: type) -> Callable[[str], Client]:
    def make(endpoint: str) -> Client:
        adapter = adapter_class(PlatformTarget(2, "B", "rest", endpoint, TOKEN), 10.0)

        def post(i: int) -> None:
            adapter.send(OutgoingEvent(f"evt_{uuid.uuid4().hex}", i, "message", body(i)))

        return post, adapter.close

    return make


def client_httptools(endpoint: str) -> Client:
    parts = urlsplit(endpoint)
    sock = socket.create_connection((parts.hostname, parts.port), 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = b"POST %smessage HTTP/1.1\r\nHost: %s\r\n" % (parts.path.encode(), parts.netloc.encode())
    head += b"".join(
        b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in constant_headers().items()
    )

    class Answer:
        def __init__(self) -> None:
            self.done = False
            self.parser = httptools.HttpResponseParser(self)

        def on_message_complete(self) -> None:
            self.done = True

    def post(i: int) -> None:
        data = body(i).encode()
        sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(data), data))
        answer = Answer()
        while not answer.done:
            answer.parser.feed_data(sock.recv(65536))
        if answer.parser.get_status_code() != 200:
            raise RuntimeError(f"HTTP {answer.parser.get_status_code()}")

    return post, sock.close


def client_h11(endpoint: str) -> Client:
    import h11

    parts = urlsplit(endpoint)
    sock = socket.create_connection((parts.hostname, parts.port), 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    http = h11.Connection(h11.CLIENT)
    target = (parts.path + "message").encode()
    head = [(b"Host", parts.netloc.encode())]
    head += [(k.encode(), v.encode()) for k, v in constant_headers().items()]

    def post(i: int) -> None:
        data = body(i).encode()
        headers = [*head, (b"Content-Length", b"%d" % len(data))]
        request = http.send(h11.Request(method=b"POST", target=target, headers=headers))
        sock.sendall(request + http.send(h11.Data(data=data)) + http.send(h11.EndOfMessage()))
        while type(event := http.next_event()) is not h11.EndOfMessage:
            if event is h11.NEED_DATA:
                http.receive_data(sock.recv(65536))
            elif type(event) is h11.Response and event.status_code != 200:
                raise RuntimeError(f"HTTP {event.status_code}")
        http.start_next_cycle()

    return post, sock.close


def client_urllib3(endpoint: str) -> Client:
    parts = urlsplit(endpoint)
    pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, retries=False)
    path, headers = parts.path + "message", constant_headers()
    timeout = urllib3.Timeout(total=10.0)

    def post(i: int) -> None:
        answer = pool.urlopen(
            "POST", path, body=body(i).encode(), headers=headers, redirect=False, timeout=timeout
        )
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")

    return post, pool.close


def clients() -> dict[str, Callable[[str], Client]]:
    every = {
        "old": adapter_client(load_old_adapter().RestAdapter),
        "new": adapter_client(RestAdapter),
    }
    if importlib.util.find_spec("h11"):
        every["h11"] = adapter_client(load_h11_adapter().RestAdapter)
    every["httptools bare"] = client_httptools
    if importlib.util.find_spec("h11"):
        every["h11 bare"] = client_h11
    every["urllib3 bare"] = client_urllib3
    return every


def measure(make: Callable[[str], Client], endpoint: str, seconds: float) -> float:
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
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--receiver", type=Path, default=ROOT / "bench" / "receiver.py", help="receiver script"
    )
    parser.add_argument("--url", help="post to this endpoint instead (e.g. http://h:p/api/)")
    parser.add_argument("--clients", help="comma-separated subset of: old, new, h11 bare, ...")
    args = parser.parse_args(argv)
    every = clients()
    chosen = {n: every[n] for n in args.clients.split(",")} if args.clients else every
    proc = None
    if args.url:
        endpoint = args.url
    else:
        port = free_port()
        proc = start_receiver(args.receiver, port)
        endpoint = f"http://127.0.0.1:{port}/api/"
    print(
        f"one in-order stream to {endpoint} ({args.receiver.name if proc else 'external'}),"
        f" {args.seconds:g}s x {args.rounds} rounds per client, Python {sys.version.split()[0]},"
        f" httptools {httptools.__version__}, urllib3 {urllib3.__version__}"
    )
    results: dict[str, list[float]] = {name: [] for name in chosen}
    names = list(chosen)
    try:
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                results[name].append(measure(chosen[name], endpoint, args.seconds))
            line = ", ".join(f"{name} {results[name][-1]:.0f}" for name in names)
            if "old" in results and "new" in results:
                line += f"; new/old {results['new'][-1] / results['old'][-1]:.2f}"
            print(f"round {round_ + 1}: {line}", flush=True)
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    width = max(len(n) for n in results)
    print(f"\n{'client':<{width}}  calls/s (median)  min-max      us/call")
    for name, rates in results.items():
        median = statistics.median(rates)
        low, high = min(rates), max(rates)
        print(f"{name:<{width}}  {median:16.0f}  {low:.0f}-{high:.0f}  {1e6 / median:9.1f}")
    if "old" in results:
        print("\ncalls/s of each client / old's in the same round: median (rounds min-max)")
        for name in [n for n in results if n != "old"]:
            ratios = [r / o for r, o in zip(results[name], results["old"], strict=True)]
            print(
                f"{name:<{width}}  {statistics.median(ratios):.2f}"
                f" ({min(ratios):.2f}-{max(ratios):.2f}),"
                f" {statistics.median(1 / r for r in ratios) - 1:+.0%} per call"
                + (" (the bar for new: at most +20%)" if name == "new" else "")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
