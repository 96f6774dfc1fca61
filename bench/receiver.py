"""A fast receiving platform for the delivery benchmark.

It answers what the hub calls on a ``rest`` platform and verifies nothing expensive (no
signature check): ``GET <prefix>users`` answers ``[]``, ``POST <prefix><kind>`` answers 200 and,
for a message, records the receive time (``time.time()``), the ``text`` and the message ``id``.
``GET /stats`` gives the counts; ``GET /stats?since=N`` also lists the messages received from
index N on, as ``[receive time, text, message id]``, so the benchmark computes latency and checks
order. HTTP/1.1 keep-alive stays on.

    python bench/receiver.py --port 9101 --token tok-B
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Store:
    """What arrived, in arrival order (one lock; appends are cheap)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, object]] = []
        self.kinds: dict[str, int] = {}
        self.requests = 0
        self.unauthorized = 0
        self.bad_json = 0
        self.sample: str | None = None  # the first message body, as received

    def record(self, kind: str, received_at: float, body: dict | None, raw: bytes) -> None:
        with self.lock:
            if kind == "message" and self.sample is None:
                self.sample = raw.decode("utf-8", "replace")
            self.requests += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if kind == "message" and body is not None:
                self.messages.append((received_at, body.get("text"), body.get("id")))

    def snapshot(self, since: int | None) -> dict:
        with self.lock:
            answer: dict = {
                "count": len(self.messages),
                "requests": self.requests,
                "kinds": dict(self.kinds),
                "unauthorized": self.unauthorized,
                "badJson": self.bad_json,
                "sample": self.sample,
            }
            if since is not None:
                answer["since"] = since
                answer["messages"] = self.messages[since:]
        return answer


def make_handler(store: Store, token: str, prefix: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        server_version = "bench-receiver"
        # Headers and body are two writes: without TCP_NODELAY, Nagle holds the body back until
        # the client's delayed ACK (~40 ms a call on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _answer(self, status: int, body: bytes) -> None:
            # One write for status line, headers and body (end_headers() would flush the
            # headers alone).
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                f"Server: bench-receiver\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/stats":
                query = parse_qs(parts.query)
                since = int(query["since"][0]) if "since" in query else None
                self._answer(200, json.dumps(store.snapshot(since)).encode())
            elif parts.path == prefix + "users":
                self._answer(200, b"[]")
            else:
                self._answer(404, b'{"status": 404}')

        def do_POST(self) -> None:
            received_at = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.startswith(prefix):
                self._answer(404, b'{"status": 404}')
                return
            if self.headers.get("Authorization") != expected:
                with store.lock:
                    store.unauthorized += 1
                self._answer(401, b'{"status": 401}')
                return
            kind = self.path[len(prefix) :]
            body = None
            if kind == "message":
                try:
                    body = json.loads(raw)
                except ValueError:
                    with store.lock:
                        store.bad_json += 1
            store.record(kind, received_at, body, raw)
            self._answer(200, b'{"status": 200}')

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--token", required=True, help="the token the hub must send (Bearer)")
    parser.add_argument("--prefix", default="/api/", help="path prefix of the endpoint (/api/)")
    args = parser.parse_args(argv)
    store = Store()
    server = Server(("127.0.0.1", args.port), make_handler(store, args.token, args.prefix))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"receiver listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
