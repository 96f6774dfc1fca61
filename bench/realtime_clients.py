"""The WebSocket clients of the real-time benchmark, each in a process of its own.

They run apart from the benchmark's poster and from the hub so that none shares a GIL with
another. ``Child`` starts one (multiprocessing, spawn) and drives it over a pipe:

- ``stream_client_main``: the sockets of W1 and W2, one thread each (``StreamSocket``), that
  record every message event and ack as told (phases 1 and 2);
- ``idle_client_main``: many idle sockets (``IdleSockets``), connected from a thread pool and
  then read by one selector thread (phase 3).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import resource
import select
import selectors
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import websocket
from common import percentile


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def tag_of(text: str) -> str:
    """``<run>:<tag>:<index>`` -> ``<run>:<tag>``, the phase a message belongs to."""
    return text.rsplit(":", 1)[0]


class StreamSocket(threading.Thread):
    """One platform's socket: read frames, record message events, ack as configured."""

    def __init__(self, name: str, url: str, token: str, ack_every: int, ack_delay: float):
        super().__init__(name=f"ws-{name}", daemon=True)
        self.platform = name
        self.ack_every = ack_every
        self.ack_delay = ack_delay
        self.ws = websocket.create_connection(
            url, timeout=30, header=[f"Authorization: Bearer {token}"], enable_multithread=False
        )
        self.lock = threading.Lock()
        self.received: list[tuple[float, int, str]] = []  # (receive time, seq, text)
        self.counts: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.last_seq = 0
        self.seq_regressions = 0
        self.acks_sent = 0
        self.error_frames: list[str] = []
        self.closed: str | None = None
        self.stopping = threading.Event()
        self._unacked = 0
        self._ack_deadline = 0.0

    def _ack(self) -> None:
        self.ws.send(json.dumps({"ack": self.last_seq}))
        self.acks_sent += 1
        self._unacked = 0

    def run(self) -> None:
        sock = self.ws.sock
        try:
            while not self.stopping.is_set():
                wait = 0.5
                if self._unacked:
                    wait = self._ack_deadline - time.monotonic()
                    if wait <= 0:
                        self._ack()
                        continue
                readable, _, _ = select.select([sock], [], [], wait)
                if not readable:
                    continue
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
                now = time.time()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(frame.data[:2], "big") if frame.data else None
                    self.closed = f"closed by the hub: {code} {frame.data[2:].decode()}"
                    return
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue  # pings are answered by websocket-client itself
                self._frame(now, json.loads(frame.data))
        except Exception as exc:
            if not self.stopping.is_set():
                self.closed = f"{type(exc).__name__}: {exc}"

    def _frame(self, now: float, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not isinstance(seq, int):
            if len(self.error_frames) < 5:
                self.error_frames.append(json.dumps(frame)[:200])
            return
        kind = frame.get("event", "?")
        with self.lock:
            if seq <= self.last_seq:
                self.seq_regressions += 1
            self.last_seq = max(self.last_seq, seq)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if kind == "message":
                text = frame["data"].get("text", "")
                self.received.append((now, seq, text))
                tag = tag_of(text)
                self.counts[tag] = self.counts.get(tag, 0) + 1
        if self.ack_every <= 1:
            self._ack()
        else:
            self._unacked += 1
            if self._unacked >= self.ack_every:
                self._ack()
            elif self._unacked == 1:
                self._ack_deadline = time.monotonic() + self.ack_delay

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "frames": sum(self.kinds.values()),
                "kinds": dict(self.kinds),
                "last_seq": self.last_seq,
                "seq_regressions": self.seq_regressions,
                "acks_sent": self.acks_sent,
                "error_frames": list(self.error_frames),
                "closed": self.closed,
            }

    def dump(self, tag: str) -> list[tuple[float, int, str]]:
        with self.lock:
            return [r for r in self.received if tag_of(r[2]) == tag]

    def stop(self) -> None:
        self.stopping.set()
        self.join(2)
        with contextlib.suppress(Exception):
            self.ws.close(timeout=1)


def stream_client_main(
    conn: Connection, url: str, tokens: dict[str, str], ack_every: int, ack_delay: float
) -> None:
    """Child process: W1 and W2, one thread each; answers the parent's commands on ``conn``."""
    raise_nofile(4096)
    sockets = {
        name: StreamSocket(name, url, token, ack_every, ack_delay) for name, token in tokens.items()
    }
    for sock in sockets.values():
        sock.start()
    conn.send("ready")
    while True:
        command, arg = conn.recv()
        if command == "counts":
            conn.send({n: s.counts.get(arg, 0) for n, s in sockets.items()})
        elif command == "dump":
            conn.send({n: s.dump(arg) for n, s in sockets.items()})
        elif command == "info":
            conn.send({n: s.info() for n, s in sockets.items()})
        elif command == "stop":
            for sock in sockets.values():
                sock.stop()
            conn.send({n: s.info() for n, s in sockets.items()})
            return


class IdleSockets:
    """Many idle sockets in one process: connected from a thread pool, then read by one
    selector thread that answers pings (websocket-client does), and records and acks frames."""

    def __init__(self, url: str, tokens: list[str], connect_threads: int) -> None:
        self.url = url
        self.tokens = tokens
        self.connect_threads = connect_threads
        self.sockets: list[websocket.WebSocket | None] = [None] * len(tokens)
        self.pings = [0] * len(tokens)
        self.closed: dict[int, str] = {}
        self.notifications: dict[str, list[float]] = {}  # title -> receive times
        self.other_frames = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reader: threading.Thread | None = None

    def connect(self) -> dict[str, Any]:
        handshakes: list[float] = []
        errors: list[str] = []

        def one(index: int) -> None:
            started = time.monotonic()
            try:
                ws = websocket.create_connection(
                    self.url, timeout=60, header=[f"Authorization: Bearer {self.tokens[index]}"]
                )
            except Exception as exc:
                with self.lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            self.sockets[index] = ws
            with self.lock:
                handshakes.append(time.monotonic() - started)

        started = time.monotonic()
        with ThreadPoolExecutor(self.connect_threads) as pool:
            list(pool.map(one, range(len(self.tokens))))
        seconds = time.monotonic() - started
        self.reader = threading.Thread(target=self._read, name="idle-reader", daemon=True)
        self.reader.start()
        return {
            "connected": len(handshakes),
            "failed": len(errors),
            "errors": errors[:5],
            "seconds": seconds,
            "handshake_p50_ms": 1000 * percentile(handshakes, 50) if handshakes else None,
            "handshake_max_ms": 1000 * max(handshakes) if handshakes else None,
        }

    def _read(self) -> None:
        selector = selectors.DefaultSelector()
        for index, ws in enumerate(self.sockets):
            if ws is not None:
                ws.settimeout(10)  # a frame that has begun arrives whole
                selector.register(ws.sock, selectors.EVENT_READ, index)
        while not self.stopping.is_set():
            for key, _ in selector.select(0.5):
                index = key.data
                ws = self.sockets[index]
                try:
                    opcode, frame = ws.recv_data_frame(control_frame=True)
                except Exception as exc:
                    selector.unregister(key.fileobj)
                    if not self.stopping.is_set():
                        self.closed[index] = f"{type(exc).__name__}: {exc}"[:200]
                    continue
                if opcode == websocket.ABNF.OPCODE_PING:
                    self.pings[index] += 1
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    selector.unregister(key.fileobj)
                    code = int.from_bytes(frame.data[:2], "big") if frame.data else None
                    reason = frame.data[2:].decode(errors="replace")
                    self.closed[index] = f"closed by the hub: {code} {reason}"
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    self._frame(index, ws, time.time(), json.loads(frame.data))
        selector.close()

    def _frame(self, index: int, ws: websocket.WebSocket, now: float, frame: dict) -> None:
        if frame.get("event") == "notification":
            with self.lock:
                self.notifications.setdefault(frame["data"]["title"], []).append(now)
        else:
            self.other_frames += 1
        if isinstance(frame.get("seq"), int):
            with contextlib.suppress(Exception):
                ws.send(json.dumps({"ack": frame["seq"]}))

    def status(self) -> dict[str, Any]:
        with self.lock:
            notes = {t: (len(v), min(v), max(v)) for t, v in self.notifications.items()}
        pinged = [p for p, ws in zip(self.pings, self.sockets, strict=True) if ws is not None]
        return {
            "open": sum(1 for i, ws in enumerate(self.sockets) if ws and i not in self.closed),
            "closed": len(self.closed),
            "closed_kinds": dict(Counter(self.closed.values()).most_common(5)),
            "pings_min": min(pinged, default=0),
            "pings_total": sum(pinged),
            "notifications": notes,
            "other_frames": self.other_frames,
        }

    def close(self) -> float:
        started = time.monotonic()
        self.stopping.set()
        if self.reader is not None:
            self.reader.join(5)

        def close_one(ws: websocket.WebSocket | None) -> None:
            if ws is not None:
                with contextlib.suppress(Exception):
                    ws.send_close()
                    ws.shutdown()

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(close_one, self.sockets))
        return time.monotonic() - started


def idle_client_main(conn: Connection, url: str, tokens: list[str], connect_threads: int) -> None:
    """Child process: hold the idle sockets; answers the parent's commands on ``conn``."""
    raise_nofile(len(tokens) * 2 + 256)
    idle = IdleSockets(url, tokens, connect_threads)
    conn.send("ready")
    while True:
        command, _ = conn.recv()
        if command == "connect":
            conn.send(idle.connect())
        elif command == "status":
            conn.send(idle.status())
        elif command == "close":
            conn.send(idle.close())
            return


class Child:
    """A client process started with multiprocessing (spawn) and driven over a pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.proc = context.Process(target=target, args=(child_conn, *args), daemon=True)
        self.proc.start()
        child_conn.close()
        if not self.conn.poll(60):
            raise RuntimeError("the client process did not start")
        ready = self.conn.recv()
        if ready != "ready":
            raise RuntimeError(f"the client process failed: {ready}")

    @property
    def pid(self) -> int:
        return self.proc.pid  # type: ignore[return-value]

    def ask(self, command: str, arg: Any = None, timeout: float = 120) -> Any:
        self.conn.send((command, arg))
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the client process did not answer {command!r}")
        return self.conn.recv()

    def stop(self, command: str = "stop") -> Any:
        answer = None
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                answer = self.ask(command, timeout=60)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()  # only this child, by its handle
            self.proc.join(5)
        return answer
