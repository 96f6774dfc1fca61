"""A fast receiving platform for the delivery and real-time benchmarks.

It answers what the hub calls on a ``rest`` platform and verifies nothing expensive (no
signature check): ``GET <prefix>users`` answers ``[]``, ``POST <prefix><kind>`` answers 200 and,
for a message, records the receive time (``time.time()``), the ``text`` and the message ``id``.
A wrong bearer token answers 401 (counted), any other path 404. ``GET /stats`` gives the counts;
``GET /stats?since=N`` also lists the messages received from index N on, as
``[receive time, text, message id]``, so the benchmark computes latency and checks order.

It is part of every figure it takes part in (the hub's deliveries and the direct posting alike),
so it is a lean HTTP/1.1 server rather than ``http.server``: one thread per connection, kept
alive, ``TCP_NODELAY``, each request read with as few ``recv`` calls as it takes (usually one)
and parsed for the three headers it needs, each answer sent in one ``sendall``. Request bodies
need a ``Content-Length`` (chunked bodies are refused with 411); ``Expect: 100-continue`` is
honoured; ``Connection: close`` and HTTP/1.0 close after the answer.

    python bench/receiver.py --port 9101 --token tok-B
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 411: b"Length Required"}
MAX_HEAD = 65536


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


def answer(status: int, body: bytes, close: bool = False) -> bytes:
    """Status line, headers and body: one buffer, one write."""
    return b"".join((
        b"HTTP/1.1 %d %s\r\nServer: bench-receiver\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % (status, REASONS.get(status, b"Error"), len(body)),
        b"Connection: close\r\n\r\n" if close else b"\r\n",
        body,
    ))  # fmt: skip


OK = answer(200, b'{"status": 200}')
UNAUTHORIZED = answer(401, b'{"status": 401}')
NOT_FOUND = answer(404, b'{"status": 404}')
USERS = answer(200, b"[]")


class Receiver:
    def __init__(self, store: Store, token: str, prefix: str) -> None:
        self.store = store
        self.expected = f"Bearer {token}".encode()
        self.prefix = prefix.encode()

    def serve(self, conn: socket.socket) -> None:
        """One connection: requests one after the other, until the client closes it."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    chunk = conn.recv(65536)
                    if not chunk or len(buf) > MAX_HEAD:
                        return
                    buf += chunk
                    end = buf.find(b"\r\n\r\n")
                received_at = time.time()
                lines = buf[:end].split(b"\r\n")
                method, _, rest = lines[0].partition(b" ")
                target, _, version = rest.partition(b" ")
                length, auth, connection, expect, chunked = 0, None, b"", b"", False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"authorization":
                        auth = value.strip()
                    elif name == b"connection":
                        connection = value.strip().lower()
                    elif name == b"expect":
                        expect = value.strip().lower()
                    elif name == b"transfer-encoding":
                        chunked = True
                if chunked:
                    conn.sendall(answer(411, b'{"status": 411}', close=True))
                    return
                buf = buf[end + 4 :]
                if expect == b"100-continue" and len(buf) < length:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                while len(buf) < length:
                    chunk = conn.recv(max(65536, length - len(buf)))
                    if not chunk:
                        return
                    buf += chunk
                raw, buf = buf[:length], buf[length:]
                close = b"close" in connection or (
                    version == b"HTTP/1.0" and b"keep-alive" not in connection
                )
                reply = self.handle(method, target, auth, raw, received_at)
                if close:
                    conn.sendall(reply.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
                    return
                conn.sendall(reply)
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def handle(
        self, method: bytes, target: bytes, auth: bytes | None, raw: bytes, received_at: float
    ) -> bytes:
        store = self.store
        if method == b"POST":
            if not target.startswith(self.prefix):
                return NOT_FOUND
            if auth != self.expected:
                with store.lock:
                    store.unauthorized += 1
                return UNAUTHORIZED
            kind = target[len(self.prefix) :].decode("latin-1")
            body = None
            if kind == "message":
                try:
                    body = json.loads(raw)
                except ValueError:
                    with store.lock:
                        store.bad_json += 1
            store.record(kind, received_at, body, raw)
            return OK
        if method == b"GET":
            parts = urlsplit(target.decode("latin-1"))
            if parts.path == "/stats":
                query = parse_qs(parts.query)
                since = int(query["since"][0]) if "since" in query else None
                return answer(200, json.dumps(store.snapshot(since)).encode())
            if parts.path.encode() == self.prefix + b"users":
                return USERS
        return NOT_FOUND


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--token", required=True, help="the token the hub must send (Bearer)")
    parser.add_argument("--prefix", default="/api/", help="path prefix of the endpoint (/api/)")
    args = parser.parse_args(argv)
    receiver = Receiver(Store(), args.token, args.prefix)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"receiver listening on 127.0.0.1:{args.port}", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=receiver.serve, args=(conn,), daemon=True).start()
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
