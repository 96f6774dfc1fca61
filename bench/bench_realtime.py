"""Real-time benchmark of the hub: WebSocket throughput, latency, and 1,000 idle sockets.

Everything runs on this machine, started by the script in a temporary directory: the hub under
gunicorn (gthread, --threads 1100 --worker-connections 2000; three workers in phases 1-2, one
more than the cores, see --hub-workers; one in phase 3) on a fresh SQLite database, a fast
receiving platform for the REST platform A (``bench/receiver.py``), and the WebSocket clients
in processes of their own (websocket-client), so that neither the poster nor the clients share
a GIL with the hub or with each other. The poster uses http.client (``LeanPoster``): it shares
the two cores with the hub, and requests costs three times its CPU per call. Clocks:
``time.time()`` on both sides.

Phases (targets of issue 3):

1. throughput   A posts up to N messages (``POST /message``, closed loop, several threads, one
                keep-alive connection each; posting stops after --post-seconds) into a private
                room with W1 and W2, whose clients (one thread each) ack every event; then a
                second run where they ack cumulatively every 20 events or 100 ms. Rate =
                messages / (time from the first POST to the last frame received on both
                sockets). Target >= 600 msg/s, nothing lost, duplicated or out of order
                (texts in the hub's acceptance order, seq strictly increasing), nothing left
                pending at the hub once acked.
2. latency      an open-loop paced sender at 100 msg/s for 10 s: receive time on W1 and W2
                minus send time, p50/p99/max; target p99 <= 30 ms. Then the same at a lower
                rate (20 msg/s, 5 s) for reference.
3. idle         a second hub with 1,000 websocket platforms (I0001..., from platforms.json);
                1,000 sockets opened from one client process, held 20 s (the hub pings them
                every 8 s), then a ``POST /notification`` to "$all" must reach every one.
                Reports the time to connect, the hub's RSS (whole process tree), threads, open
                files and CPU while idle. Target: 1,000 held, every one answering.

The exceptions in the hub's log are summed up at the end (notes).

    .venv/bin/python bench/bench_realtime.py              # full run, ~3 minutes
    .venv/bin/python bench/bench_realtime.py --quick      # ~35-40 s smoke run
    .venv/bin/python bench/bench_realtime.py --phases 3 --idle 2000 --json idle.json
    .venv/bin/python bench/bench_realtime.py --hub-root /tmp/patched-copy   # try a fix
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client as http_client
import json
import multiprocessing
import os
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
RECEIVER = Path(__file__).resolve().parent / "receiver.py"
PY = sys.executable
ADMIN_TOKEN = "rt-bench-admin"
TOKENS = {"A": "rt-bench-A", "W1": "rt-bench-W1", "W2": "rt-bench-W2"}
SOCKETS = ("W1", "W2")
DISTURBED = 20.0  # % of a core used by processes outside the benchmark that marks a phase
T0 = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def stop_process(proc: subprocess.Popen | None, wait: float = 20) -> None:
    """Stop a process this script started, by its pid only: SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def new_session(token: str | None = None) -> requests.Session:
    """A keep-alive client that skips the environment's proxy/netrc lookups on every call."""
    session = requests.Session()
    session.trust_env = False
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def mb(value: float) -> float:
    return value / (1024 * 1024)


def code_version(root: Path) -> str:
    """The hub's git commit, plus a digest of its Python sources (the tree may be uncommitted)."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("hub/**/*.py"), *root.glob("adapters/**/*.py")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return f"{head or 'no git'} + sources sha256:{digest.hexdigest()[:12]}"


# --- processes: the receiver of A and the hub -------------------------------------------------


class Receiver:
    """bench/receiver.py answering the hub's calls on the REST platform A."""

    def __init__(self, workdir: Path, token: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.url}/api/"
        self.token = token
        self.log_path = workdir / "receiver-A.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [PY, str(RECEIVER), "--port", str(self.port), "--token", self.token],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        http = new_session()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}")
            try:
                return http.get(f"{self.url}/stats", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 15, "the receiver of A")

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/stats", timeout=10).json()

    def stop(self) -> None:
        stop_process(self.proc)


class Hub:
    """One hub process tree (gunicorn master + gthread workers) on its own SQLite database."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        entries: list[dict[str, Any]],
        args: argparse.Namespace,
        workers: int = 1,
    ) -> None:
        self.workers = workers
        self.dir = workdir / name
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        (self.dir / "platforms.json").write_text(json.dumps(entries, indent=1))
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": f"sqlite:///{self.dir / 'hub.sqlite3'}",
            "HUB_PLATFORMS_FILE": str(self.dir / "platforms.json"),
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_LOG_LEVEL": "WARNING",
        }
        self.args = args
        self.log_path = self.dir / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.http = new_session()
        self.start_seconds = 0.0

    def command(self) -> list[str]:
        command = [
            PY,
            "-m",
            "gunicorn",
            "wsgi:app",
            "-k",
            "gthread",
            "--threads",
            str(self.args.hub_threads),
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
        ]
        if self.args.worker_connections:
            command += ["--worker-connections", str(self.args.worker_connections)]
        return command

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {**self.env, **(extra_env or {})}
        for item in self.args.hub_env:
            name, _, value = item.partition("=")
            env[name] = value
        out = open(self.log_path, "ab")  # noqa: SIM115
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), cwd=self.args.hub_root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, 120, "the hub's /readyz")
        self.start_seconds = time.monotonic() - started

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.http.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, wait: float = 30) -> None:
        """SIGTERM to the master; if the tree is not gone after ``wait`` s, SIGKILL its pids."""
        children = self.processes()[1:]
        stop_process(self.proc, wait=wait)
        for child in children:
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()
        self.http.close()

    def errors(self) -> dict[str, int]:
        """Exceptions and gunicorn errors in the hub's log, by kind."""
        kinds: dict[str, int] = {}
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return kinds
        for line in lines:
            found = []
            # Tracebacks of several threads interleave: look for each kind anywhere in a line.
            error = re.search(r"([A-Za-z_][\w.]*(?:Error|Exception)): ([^\^]{0,70})", line)
            if error:
                text = re.split(r"\[20\d\d-| \(Background", error.group(2))[0].strip()
                found.append(f"{error.group(1).rpartition('.')[2]}: {text}")
            if "WORKER TIMEOUT" in line:
                found.append("gunicorn: WORKER TIMEOUT (the master killed the worker)")
            if "Socket error processing request" in line:
                found.append("gunicorn: Socket error processing request")
            for kind in found:
                kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def processes(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        """RSS of the whole tree (master + worker), bytes."""
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def threads(self) -> int:
        """Threads of the whole tree."""
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.num_threads()
        return total

    def fds(self) -> int:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.num_fds()
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def call(
        self, token: str, method: str, path: str, body: Any = None, timeout: float = 60
    ) -> requests.Response:
        return self.http.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def platforms(self, timeout: float = 60) -> dict[str, dict[str, Any]]:
        answer = self.call(ADMIN_TOKEN, "GET", "/admin/platforms", timeout=timeout)
        answer.raise_for_status()
        return {p["name"]: p for p in answer.json()}


class CpuMeter:
    """CPU used between ``start()`` and ``stop()``, in % of one core: by the named sources, and
    by ``others``, the processes of the machine that this benchmark did not start (their load
    disturbs the figures), and ``steal`` (taken by the hypervisor)."""

    def __init__(self, **sources: Callable[[], float]) -> None:
        self.sources = sources
        self.before: dict[str, float] = {}
        self.started = 0.0
        self.percent: dict[str, float] = {}

    @staticmethod
    def _ours() -> dict[int, float]:
        """CPU seconds of this process and every process it started (hub, clients, receiver)."""
        found: dict[int, float] = {}
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                found[proc.pid] = (
                    times.user + times.system + times.children_user + times.children_system
                )
        return found

    @staticmethod
    def _machine() -> tuple[float, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        steal = getattr(times, "steal", 0.0)
        return sum(times) - idle - steal - getattr(times, "guest", 0.0), steal

    def start(self) -> CpuMeter:
        self.before = {name: read() for name, read in self.sources.items()}
        self.ours_before = self._ours()
        self.machine_before = self._machine()
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.started, 1e-9)
        self.percent = {
            name: 100 * (read() - self.before[name]) / wall for name, read in self.sources.items()
        }
        ours = sum(value - self.ours_before.get(pid, 0.0) for pid, value in self._ours().items())
        busy, steal = self._machine()
        others = busy - self.machine_before[0] - ours
        self.percent["others"] = max(0.0, 100 * others / wall)
        self.percent["steal"] = 100 * (steal - self.machine_before[1]) / wall
        return self.percent

    def text(self) -> str:
        return ", ".join(f"{name} {value:.0f}%" for name, value in self.percent.items())


def process_cpu(pid: int) -> Callable[[], float]:
    def read() -> float:
        try:
            times = psutil.Process(pid).cpu_times()
            return times.user + times.system
        except psutil.Error:
            return 0.0

    return read


# --- the WebSocket clients (child processes) --------------------------------------------------


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


# --- posting ----------------------------------------------------------------------------------


@dataclass
class Sent:
    text: str
    scheduled: float = 0.0  # open loop: when it should go (time.time())
    sent: float = 0.0  # time.time() just before the POST
    answered: float = 0.0
    status: int = 0
    message_id: Any = None
    error: str = ""


class LeanPoster:
    """POST over one keep-alive connection with http.client: the load generator shares the
    machine's two cores with the hub, and requests costs it about 1.5 ms of CPU a call, http.client
    about a third of that."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn: http_client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> tuple[int, bytes]:
        """One POST, never retried (a retry could post a message twice)."""
        if self.conn is None:
            self.conn = http_client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request("POST", path, json.dumps(body).encode(), self.headers)
            answer = self.conn.getresponse()
            return answer.status, answer.read()
        except (OSError, http_client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def post_messages(
    url: str,
    items: list[Sent],
    threads: int,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    seconds: float | None = None,
) -> None:
    """POST /message from A for every item: closed loop, or open loop paced at ``rate``/s.

    With ``seconds``, no POST starts after that long: the items left have ``sent == 0``."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    start = time.time() + 0.05
    until = start + seconds if seconds else None

    def worker() -> None:
        http = LeanPoster(url, TOKENS["A"])
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= len(items) or (until is not None and time.time() >= until):
                break
            item = items[index]
            if rate:
                item.scheduled = start + index / rate
                delay = item.scheduled - time.time()
                if delay > 0:
                    time.sleep(delay)
            body = {"roomOriginalPlatform": "A", "roomId": 1, "senderId": 1, "text": item.text}
            item.sent = time.time()
            try:
                status, answer = http.post("/message", body)
                item.answered = time.time()
                item.status = status
                if status == 202:
                    item.message_id = json.loads(answer)["id"]
                else:
                    item.error = answer[:200].decode(errors="replace")
            except (OSError, http_client.HTTPException) as exc:
                item.answered = time.time()
                item.error = f"{type(exc).__name__}: {exc}"[:200]
            with lock:
                state["done"] += 1
        http.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    last = time.monotonic()
    while any(t.is_alive() for t in workers):
        time.sleep(0.05)
        if progress and time.monotonic() - last >= 2:
            progress(state["done"])
            last = time.monotonic()
    for thread in workers:
        thread.join()


# --- checks and results -----------------------------------------------------------------------


@dataclass
class Check:
    """Integrity of one phase at one socket."""

    phase: str
    socket: str
    expected: int
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    seq_regressions: int = 0
    post_errors: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.duplicates
            or self.unexpected
            or self.out_of_order
            or self.seq_regressions
            or self.post_errors
        )

    def line(self) -> str:
        return (
            f"{self.phase:<18} {self.socket}: {self.received - self.duplicates}/{self.expected}"
            f" received, missing {self.missing}, duplicates {self.duplicates}, unexpected"
            f" {self.unexpected}, out of order {self.out_of_order}, seq regressions"
            f" {self.seq_regressions}, failed posts {self.post_errors}"
            f"  {'OK' if self.ok else 'FAIL'}"
        )


def check_stream(
    phase: str, name: str, got: list[tuple[float, int, str]], items: list[Sent]
) -> Check:
    """Compare what one socket received with what the hub accepted, in acceptance order (the
    message id: a message takes its receivers' seqs before its id, so for the messages of one
    room id order is seq order, on SQLite and on PostgreSQL)."""
    accepted = sorted((i for i in items if i.status == 202), key=lambda i: i.message_id)
    rank = {item.text: position for position, item in enumerate(accepted)}
    result = Check(phase, name, len(accepted), received=len(got))
    result.post_errors = sum(1 for i in items if i.sent and i.status != 202)
    seen: set[str] = set()
    previous_rank, previous_seq = -1, 0
    for _, seq, text in got:
        if seq <= previous_seq:
            result.seq_regressions += 1
        previous_seq = max(previous_seq, seq)
        if text in seen:
            result.duplicates += 1
            continue
        seen.add(text)
        position = rank.get(text)
        if position is None:
            result.unexpected += 1
            continue
        if position < previous_rank:
            result.out_of_order += 1
        previous_rank = max(previous_rank, position)
    result.missing = len(set(rank) - seen)
    return result


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.results = Results()
        self.f = self.results.figures
        self.receiver: Receiver | None = None
        self.hub: Hub | None = None
        self.idle_hub: Hub | None = None
        self.children: list[Child] = []

    def run(self) -> Results:
        args = self.args
        if {1, 2} & args.phases:
            self.setup_stream_hub()
            if 1 in args.phases:
                self.throughput(1, "ack1")
                self.throughput(args.ack_every, f"ack{args.ack_every}")
            if 2 in args.phases:
                self.latency(args.rate, args.duration, "p2")
                if args.low_rate > 0:
                    self.latency(args.low_rate, args.low_duration, "p2low")
            self.hub.stop()
            self.note_hub_errors(self.hub, "phases 1-2")
            self.receiver.stop()
        if 3 in args.phases:
            self.idle()
        return self.results

    def close(self) -> None:
        for child in self.children:
            child.stop()
        for hub in (self.hub, self.idle_hub):
            if hub is not None:
                hub.stop()
        if self.receiver is not None:
            self.receiver.stop()

    # --- phases 1 and 2: A -> W1, W2 ---

    def setup_stream_hub(self) -> None:
        self.receiver = Receiver(self.workdir, TOKENS["A"])
        self.receiver.start()
        entries = [
            {
                "id": 1,
                "name": "A",
                "endpoint": self.receiver.endpoint,
                "supportAudio": "True",
                "supportImage": "True",
                "token": TOKENS["A"],
            },
            {"id": 2, "name": "W1", "token": TOKENS["W1"], "transport": "websocket"},
            {"id": 3, "name": "W2", "token": TOKENS["W2"], "transport": "websocket"},
        ]
        self.hub = hub = Hub(
            self.workdir, "stream-hub", entries, self.args, workers=self.args.hub_workers
        )
        log(f"starting the hub: {' '.join(hub.command()[1:])}")
        hub.start()
        log(f"hub up in {hub.start_seconds:.1f}s (pid {hub.proc.pid}); registering users, room")
        for name in ("A", "W1", "W2"):
            answer = hub.call(TOKENS[name], "POST", "/user", {"id": 1, "name": f"{name} bench"})
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"POST /user as {name}: {answer.status_code} {answer.text}")
        room = {
            "id": 1,
            "name": "bench",
            "type": "private",
            "users": [{"A": [1]}, {"W1": [1]}, {"W2": [1]}],
        }
        answer = hub.call(TOKENS["A"], "POST", "/room", room)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST /room: {answer.status_code} {answer.text}")

    def stream_clients(self, ack_every: int) -> Child:
        tokens = {name: TOKENS[name] for name in SOCKETS}
        child = Child(stream_client_main, self.hub.ws_url, tokens, ack_every, self.args.ack_delay)
        self.children.append(child)
        return child

    def stop_clients(self, child: Child) -> dict[str, Any]:
        info = child.stop()
        self.children.remove(child)
        return info or {}

    def texts(self, tag: str, count: int) -> list[Sent]:
        return [Sent(f"{self.run_id}:{tag}:{i:07d}") for i in range(count)]

    def wait_received(self, child: Child, tag: str, count: int, label: str) -> bool:
        """Wait until both sockets have ``count`` messages of a phase; False after a stall."""
        last_total, last_change, last_print = -1, time.monotonic(), time.monotonic()
        while True:
            counts = child.ask("counts", tag)
            if all(counts[name] >= count for name in SOCKETS):
                return True
            total = sum(counts.values())
            now = time.monotonic()
            if total != last_total:
                last_total, last_change = total, now
            elif now - last_change > self.args.stall_timeout:
                log(f"{label}: no progress for {self.args.stall_timeout:.0f}s; giving up")
                return False
            if now - last_print >= 2:
                log(f"{label}: received " + ", ".join(f"{n} {counts[n]}/{count}" for n in SOCKETS))
                last_print = now
            time.sleep(0.02)

    def warm_up(self, child: Child, label: str) -> None:
        count = self.args.warmup
        if count <= 0:
            return
        tag = f"{self.run_id}:warm-{label}"
        items = self.texts(f"warm-{label}", count)
        post_messages(self.hub.url, items, self.args.threads)
        if not self.wait_received(child, tag, count, f"warm-up {label}"):
            raise RuntimeError("the warm-up messages did not all arrive")

    def pending(self) -> dict[str, int]:
        listing = self.hub.platforms()
        return {name: listing[name]["queueDepth"] for name in SOCKETS}

    def throughput(self, ack_every: int, label: str) -> None:
        args, hub = self.args, self.hub
        mode = (
            "every event"
            if ack_every <= 1
            else f"every {ack_every} events or {args.ack_delay * 1000:.0f} ms"
        )
        log(
            f"phase 1 [{label}]: {args.messages} messages A -> W1, W2 (posting for at most"
            f" {args.post_seconds:g}s); the clients ack {mode}"
        )
        child = self.stream_clients(ack_every)
        self.warm_up(child, label)
        tag = f"thr-{label}"
        items = self.texts(tag, args.messages)
        cpu = CpuMeter(
            hub=hub.cpu_seconds, clients=process_cpu(child.pid), poster=process_cpu(os.getpid())
        ).start()

        def progress(done: int) -> None:
            counts = child.ask("counts", f"{self.run_id}:{tag}")
            log(
                f"phase 1 [{label}]: posted {done}/{len(items)},"
                f" received W1 {counts['W1']}, W2 {counts['W2']}"
            )

        post_messages(hub.url, items, args.threads, progress=progress, seconds=args.post_seconds)
        posted_items = [i for i in items if i.sent]
        accepted = sum(1 for i in items if i.status == 202)
        started = min(i.sent for i in posted_items)  # the first POST
        posted = max(i.answered for i in posted_items)  # the last answer
        complete = self.wait_received(child, f"{self.run_id}:{tag}", accepted, f"phase 1 [{label}]")
        cpu.stop()
        got = child.ask("dump", f"{self.run_id}:{tag}")
        last_frame = max((r[0] for name in SOCKETS for r in got[name]), default=posted)
        elapsed = last_frame - started
        key = f"p1_{label}"
        self.f[f"{key}_ack_mode"] = mode
        self.f[f"{key}_messages"] = accepted
        if len(posted_items) < len(items):
            self.results.notes.append(
                f"phase 1 [{label}]: stopped posting after {args.post_seconds:g}s:"
                f" {len(posted_items)} of {len(items)} messages posted"
            )
        self.f[f"{key}_msg_per_s"] = accepted / elapsed if complete else None
        self.f[f"{key}_events_per_s"] = 2 * accepted / elapsed if complete else None
        self.f[f"{key}_posts_per_s"] = accepted / max(posted - started, 1e-9)
        self.f[f"{key}_lag_after_last_post_s"] = last_frame - posted
        self.f[f"{key}_complete"] = complete
        self.f[f"{key}_cpu_percent"] = cpu.percent
        for name in SOCKETS:
            self.results.checks.append(
                check_stream(f"1 throughput {label}", name, got[name], items)
            )
        # Every frame was acked: once the last acks are stored, nothing is pending at the hub.
        try:
            wait_until(lambda: not any(self.pending().values()), 15, "pending events to reach 0")
            self.f[f"{key}_pending_after"] = 0
        except RuntimeError:
            self.f[f"{key}_pending_after"] = sum(self.pending().values())
            self.results.notes.append(
                f"phase 1 [{label}]: events still pending at the hub after acking: {self.pending()}"
            )
        info = self.stop_clients(child)
        self.f[f"{key}_acks_sent"] = {n: info.get(n, {}).get("acks_sent") for n in SOCKETS}
        self.note_socket_trouble(f"phase 1 [{label}]", info)
        rate = self.f[f"{key}_msg_per_s"]
        log(
            f"phase 1 [{label}]: {accepted} messages in {elapsed:.2f}s = "
            f"{rate or 0:.0f} msg/s end to end ({2 * (rate or 0):.0f} frames/s);"
            f" POSTs {self.f[f'{key}_posts_per_s']:.0f}/s; last frame"
            f" {last_frame - posted:.2f}s after the last 202; CPU {cpu.text()}"
        )

    def note_socket_trouble(self, phase: str, info: dict[str, Any]) -> None:
        for name, data in info.items():
            if data.get("closed"):
                self.results.notes.append(f"{phase}: {name}'s socket: {data['closed']}")
            if data.get("error_frames"):
                self.results.notes.append(f"{phase}: {name} got {data['error_frames']}")

    def latency(self, rate: float, duration: float, key: str) -> None:
        """Open-loop sender at ``rate`` msg/s for ``duration`` s; figures under ``key``."""
        args, hub = self.args, self.hub
        count = max(2, int(rate * duration))
        log(
            f"phase 2 [{rate:g}/s]: {count} messages at {rate:g} msg/s (open loop,"
            f" {args.latency_threads} threads); W1, W2 ack every {args.latency_ack_every} event(s)"
        )
        child = self.stream_clients(args.latency_ack_every)
        label = f"lat{rate:g}"
        self.warm_up(child, label)
        items = self.texts(label, count)
        tag = f"{self.run_id}:{label}"
        cpu = CpuMeter(hub=hub.cpu_seconds, clients=process_cpu(child.pid)).start()

        def progress(done: int) -> None:
            log(f"phase 2 [{rate:g}/s]: posted {done}/{count}")

        # A hub slower than the rate falls behind: stop sending at 1.5 x the planned duration.
        limit = 1.5 * duration + 1
        post_messages(
            hub.url,
            items,
            args.latency_threads,
            rate=rate,
            progress=progress,
            seconds=limit,
        )
        posted_items = [i for i in items if i.sent]
        accepted = sum(1 for i in items if i.status == 202)
        if len(posted_items) < count:
            self.results.notes.append(
                f"phase 2 [{rate:g}/s]: the hub fell behind the schedule; {len(posted_items)}"
                f" of {count} messages sent in {limit:g}s"
            )
        complete = self.wait_received(child, tag, accepted, f"phase 2 [{rate:g}/s]")
        cpu.stop()
        got = child.ask("dump", tag)
        sent = {i.text: i.sent for i in items if i.status == 202}
        latencies: dict[str, list[float]] = {}
        for name in SOCKETS:
            latencies[name] = [1000 * (t - sent[text]) for t, _, text in got[name] if text in sent]
            self.results.checks.append(
                check_stream(f"2 latency {rate:g}/s", name, got[name], items)
            )
        both = latencies["W1"] + latencies["W2"]
        posts = [1000 * (i.answered - i.sent) for i in items if i.status == 202]
        lag = [1000 * (i.sent - i.scheduled) for i in posted_items]
        first, last = min(i.sent for i in posted_items), max(i.sent for i in posted_items)
        f = self.f
        f[f"{key}_rate"] = rate
        f[f"{key}_messages"] = accepted
        f[f"{key}_achieved_rate"] = (
            (len(posted_items) - 1) / (last - first) if last > first else None
        )
        f[f"{key}_complete"] = complete
        f[f"{key}_ack_every"] = args.latency_ack_every
        if both:
            f[f"{key}_p50_ms"] = percentile(both, 50)
            f[f"{key}_p99_ms"] = percentile(both, 99)
            f[f"{key}_max_ms"] = max(both)
            for name in SOCKETS:
                if latencies[name]:
                    f[f"{key}_{name}_p50_ms"] = percentile(latencies[name], 50)
                    f[f"{key}_{name}_p99_ms"] = percentile(latencies[name], 99)
                    f[f"{key}_{name}_max_ms"] = max(latencies[name])
        if posts:
            f[f"{key}_post_p50_ms"] = percentile(posts, 50)
            f[f"{key}_post_p99_ms"] = percentile(posts, 99)
        f[f"{key}_sender_max_lag_ms"] = max(lag) if lag else None
        f[f"{key}_cpu_percent"] = cpu.percent
        info = self.stop_clients(child)
        self.note_socket_trouble(f"phase 2 [{rate:g}/s]", info)
        log(
            f"phase 2 [{rate:g}/s]: latency p50 {f.get(f'{key}_p50_ms', 0):.1f} ms, p99"
            f" {f.get(f'{key}_p99_ms', 0):.1f} ms, max {f.get(f'{key}_max_ms', 0):.1f} ms"
            f" (POST p99 {f.get(f'{key}_post_p99_ms', 0):.1f} ms, sender lag max"
            f" {f[f'{key}_sender_max_lag_ms'] or 0:.1f} ms); CPU {cpu.text()}"
        )

    # --- phase 3: idle sockets ---

    def idle(self) -> None:
        args = self.args
        n = args.idle
        names = [f"I{i:04d}" for i in range(1, n + 1)]
        tokens = [f"idle-{i:04d}" for i in range(1, n + 1)]
        entries = [
            {"name": name, "token": token, "transport": "websocket"}
            for name, token in zip(names, tokens, strict=True)
        ]
        self.idle_hub = hub = Hub(self.workdir, "idle-hub", entries, args)
        log(f"phase 3: starting a hub with {n} websocket platforms: {' '.join(hub.command()[1:])}")
        hub.start({"HUB_WS_PING_INTERVAL": str(args.idle_ping_interval)})
        f = self.f
        f["p3_sockets"] = n
        f["p3_hub_start_s"] = hub.start_seconds
        time.sleep(1)
        f["p3_rss_0_mb"] = mb(hub.rss())
        f["p3_threads_0"] = hub.threads()
        log(
            f"phase 3: hub up in {hub.start_seconds:.1f}s; {f['p3_rss_0_mb']:.0f} MB,"
            f" {f['p3_threads_0']} threads with no socket; connecting {n} sockets"
            f" ({args.connect_threads} client threads)"
        )
        child = Child(idle_client_main, hub.ws_url, tokens, args.connect_threads)
        self.children.append(child)
        connected = child.ask("connect", timeout=600)
        f["p3_connected"] = connected["connected"]
        f["p3_connect_failed"] = connected["failed"]
        f["p3_connect_s"] = connected["seconds"]
        f["p3_handshake_p50_ms"] = connected["handshake_p50_ms"]
        f["p3_handshake_max_ms"] = connected["handshake_max_ms"]
        log(
            f"phase 3: {connected['connected']}/{n} sockets open in {connected['seconds']:.1f}s"
            f" ({connected['failed']} failed{''.join(': ' + e for e in connected['errors'][:1])})"
        )
        # Connected at the HTTP level; the hub then takes each stream's lease and marks it up.
        started = time.monotonic()
        up = self.count_up(hub)
        while (up or 0) < n and time.monotonic() - started < args.up_timeout:
            time.sleep(1)
            up = self.count_up(hub)
        f["p3_all_up_s"] = (
            connected["seconds"] + time.monotonic() - started if (up or 0) >= n else None
        )
        f["p3_marked_up"] = up
        if up is None:
            self.results.notes.append(
                f"phase 3: GET /admin/platforms did not answer within 10 s (tried for"
                f" {args.up_timeout:g}s after connecting): how many are marked up is unknown"
            )
        elif up < n:
            self.results.notes.append(
                f"phase 3: {up}/{n} platforms marked up {args.up_timeout:g}s after connecting"
            )
        shown = "?" if up is None else up
        log(
            f"phase 3: {shown}/{n} marked up at the hub; holding them {args.hold:g}s (the hub"
            f" pings every {args.idle_ping_interval:g}s)"
        )
        cpu = CpuMeter(hub=hub.cpu_seconds).start()
        rss_peak, threads_peak, held_from = 0, 0, time.monotonic()
        probes: list[float] = []
        probe_failures = 0
        while time.monotonic() - held_from < args.hold:
            rss_peak = max(rss_peak, hub.rss())
            threads_peak = max(threads_peak, hub.threads())
            probe = time.monotonic()
            try:
                hub.http.get(f"{hub.url}/healthz", timeout=5).raise_for_status()
                probes.append(1000 * (time.monotonic() - probe))
            except requests.RequestException:
                probe_failures += 1
            time.sleep(max(0.0, 1 - (time.monotonic() - probe)))
            if (len(probes) + probe_failures) % 5 == 0:
                status = child.ask("status")
                log(
                    f"phase 3: {status['open']} open, {status['closed']} closed by the hub,"
                    f" hub {mb(hub.rss()):.0f} MB, {hub.threads()} threads,"
                    f" {status['pings_total']} pings received"
                )
        cpu.stop()
        f["p3_idle_cpu_percent"] = cpu.percent["hub"]
        f["p3_cpu_percent"] = cpu.percent
        f["p3_rss_mb"] = mb(hub.rss())
        f["p3_rss_peak_mb"] = mb(rss_peak)
        f["p3_threads"] = hub.threads()
        f["p3_threads_peak"] = threads_peak
        f["p3_fds"] = hub.fds()
        f["p3_rss_per_socket_kb"] = (
            1024 * (f["p3_rss_mb"] - f["p3_rss_0_mb"]) / max(connected["connected"], 1)
        )
        f["p3_healthz_p50_ms"] = percentile(probes, 50) if probes else None
        f["p3_healthz_max_ms"] = max(probes) if probes else None
        f["p3_healthz_failures"] = probe_failures
        status = child.ask("status")
        f["p3_open_after_hold"] = status["open"]
        f["p3_min_pings_per_socket"] = status["pings_min"]
        # Does every socket still answer? One notification to "$all" must reach each.
        title = f"bench-{self.run_id}"
        body = {"title": title, "body": "are you there?", "priority": 1, "to": "$all"}
        sent, deadline = time.time(), time.monotonic() + args.notify_timeout
        try:
            answer = hub.call(ADMIN_TOKEN, "POST", "/notification", body, timeout=60)
            f["p3_notification_post_ms"] = 1000 * (time.time() - sent)
            if answer.status_code != 202:
                raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")
            f["p3_notification_receivers"] = answer.json().get("receivers")
        except (requests.RequestException, RuntimeError) as exc:
            self.results.notes.append(f"phase 3: POST /notification failed: {exc}")
        while True:  # until every socket has it, or --notify-timeout after the POST was sent
            status = child.ask("status")
            if status["notifications"].get(title, (0, 0, 0))[0] >= n:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        count, _, last_at = status["notifications"].get(title, (0, 0, 0))
        f["p3_notified"] = count
        f["p3_notify_all_ms"] = 1000 * (last_at - sent) if count >= n else None
        f["p3_notify_last_ms"] = 1000 * (last_at - sent) if count else None
        f["p3_open_at_end"] = status["open"]
        if status["closed"]:
            kinds = ", ".join(f"{n} x {kind}" for kind, n in status["closed_kinds"].items())
            self.results.notes.append(
                f"phase 3: {status['closed']} sockets closed by the hub or cut: {kinds}"
            )
        log(
            f"phase 3: notification to $all reached {count}/{n} sockets (the last"
            f" {f['p3_notify_last_ms'] or 0:.0f} ms after the POST, answered in"
            f" {f.get('p3_notification_post_ms') or 0:.0f} ms); hub {f['p3_rss_mb']:.0f} MB,"
            f" {f['p3_threads']} threads, idle CPU {f['p3_idle_cpu_percent']:.0f}% of a core"
        )
        closing = time.monotonic()
        self.children.remove(child)
        child.stop("close")
        # The sessions end: their pusher and simple-websocket reader threads exit (2 a socket);
        # gunicorn's thread pool keeps its idle threads.
        target = f["p3_threads"] - 2 * status["open"] + 10
        last = hub.threads()
        while last > target and time.monotonic() - closing < 30:
            time.sleep(0.2)
            last = hub.threads()
        f["p3_wind_down_s"] = time.monotonic() - closing if last <= target else None
        f["p3_threads_after_close"] = last
        log(
            f"phase 3: sockets closed; hub threads {last} after"
            f" {time.monotonic() - closing:.1f}s (gunicorn's pool keeps its idle threads)"
        )
        hub.stop(wait=15)
        self.note_hub_errors(hub, "phase 3")

    def count_up(self, hub: Hub) -> int | None:
        """How many platforms the hub marks up; None if its admin listing does not answer."""
        try:
            listing = hub.platforms(timeout=10)
        except requests.RequestException:
            return None
        return sum(p["health"] == "up" for p in listing.values())

    def note_hub_errors(self, hub: Hub, phase: str) -> None:
        for kind, count in sorted(hub.errors().items(), key=lambda kv: -kv[1]):
            self.results.notes.append(f"{phase}: hub log: {count} x {kind}")


# --- the report -------------------------------------------------------------------------------


def report(results: Results, args: argparse.Namespace) -> None:
    f = results.figures
    rows: list[tuple[str, str, str, str]] = []

    def fmt(value: Any, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    def row(label: str, key: str, spec: str, target: str = "", ok: bool | None = None) -> None:
        if key not in f:
            return
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        rows.append((label, fmt(f[key], spec), target, verdict))

    def at_least(key: str, limit: float) -> bool:
        return f.get(key) is not None and f[key] >= limit

    def at_most(key: str, limit: float) -> bool:
        return f.get(key) is not None and f[key] <= limit

    checks_ok = {c.phase: True for c in results.checks}
    for c in results.checks:
        checks_ok[c.phase] &= c.ok
    for label in ("ack1", f"ack{args.ack_every}"):
        key = f"p1_{label}"
        if f"{key}_msg_per_s" not in f:
            continue
        mode = "ack each" if label == "ack1" else f"ack/{args.ack_every}"
        intact = checks_ok.get(f"1 throughput {label}", False) and not f.get(f"{key}_pending_after")
        row(
            f"1 throughput, {mode}, msg/s end to end",
            f"{key}_msg_per_s",
            ".0f",
            ">= 600",
            at_least(f"{key}_msg_per_s", 600),
        )
        rows.append(
            (
                f"1   {mode}: lost/dup/out of order, pending",
                "none" if intact else "SOME",
                "none",
                "PASS" if intact else "MISS",
            )
        )
        row(f"1   {mode}: POST /message 202/s", f"{key}_posts_per_s", ".0f")
        row(f"1   {mode}: last frame after last 202, s", f"{key}_lag_after_last_post_s", ".2f")
    row("2 sender's achieved rate, msg/s", "p2_achieved_rate", ".0f")
    row("2 latency p50, ms", "p2_p50_ms", ".1f")
    row(
        f"2 latency p99 at {f.get('p2_rate', args.rate):g} msg/s, ms",
        "p2_p99_ms",
        ".1f",
        "<= 30",
        at_most("p2_p99_ms", 30),
    )
    row("2 latency max, ms", "p2_max_ms", ".1f")
    if "p2_rate" in f:
        intact = checks_ok.get(f"2 latency {f['p2_rate']:g}/s", False)
        rows.append(
            ("2   lost/dup/out of order", "none" if intact else "SOME", "none", pass_(intact))
        )
    row("2 POST /message p99, ms", "p2_post_p99_ms", ".1f")
    row("2 sender max lag behind schedule, ms", "p2_sender_max_lag_ms", ".1f")
    if "p2low_rate" in f:
        low = f"{f['p2low_rate']:g} msg/s"
        row(f"2 at {low}: achieved rate, msg/s", "p2low_achieved_rate", ".0f")
        row(f"2 at {low}: latency p50, ms", "p2low_p50_ms", ".1f")
        row(f"2 at {low}: latency p99, ms", "p2low_p99_ms", ".1f")
        row(f"2 at {low}: latency max, ms", "p2low_max_ms", ".1f")
        row(f"2 at {low}: POST /message p99, ms", "p2low_post_p99_ms", ".1f")
    if "p3_sockets" in f:
        n = f["p3_sockets"]
        held = (
            f.get("p3_connected") == n
            and f.get("p3_open_after_hold") == n
            and f.get("p3_notified") == n
            and at_most("p3_notify_all_ms", 1000 * args.notify_timeout)
        )
        target = 1000
        worst = min(f.get(k) or 0 for k in ("p3_connected", "p3_open_after_hold", "p3_notified"))
        rows.append(
            (
                "3 idle sockets held and answering",
                f"{worst}/{n}",
                f">= {target}",
                pass_(held) if n >= target else ("MISS" if not held else f"n/a (< {target})"),
            )
        )
        row("3 hub start with that many platforms, s", "p3_hub_start_s", ".1f")
        row("3 time to open them all (handshakes), s", "p3_connect_s", ".1f")
        row("3 ... platforms marked up at the hub", "p3_marked_up", "d")
        row("3 ... until all marked up at the hub, s", "p3_all_up_s", ".1f")
        row("3 handshake p50, ms", "p3_handshake_p50_ms", ".0f")
        row("3 handshake max, ms", "p3_handshake_max_ms", ".0f")
        row("3 hub RSS with no socket (tree), MB", "p3_rss_0_mb", ".0f")
        row("3 hub RSS with them open (tree), MB", "p3_rss_mb", ".0f")
        row("3 ... per socket, KB", "p3_rss_per_socket_kb", ".0f")
        row("3 hub threads with no socket", "p3_threads_0", "d")
        row("3 hub threads with them open", "p3_threads", "d")
        row("3 hub open files with them open", "p3_fds", "d")
        row("3 hub CPU while they idle, % of a core", "p3_idle_cpu_percent", ".0f")
        row("3 GET /healthz meanwhile, p50 ms", "p3_healthz_p50_ms", ".1f")
        row("3 GET /healthz meanwhile, max ms", "p3_healthz_max_ms", ".0f")
        row("3 pings received per socket (min)", "p3_min_pings_per_socket", "d")
        row("3 GET /healthz meanwhile, failed (5 s timeout)", "p3_healthz_failures", "d")
        row("3 POST /notification $all answered in, ms", "p3_notification_post_ms", ".0f")
        row("3 ... sockets it reached", "p3_notified", "d")
        row(
            "3 ... reached all of them after, ms",
            "p3_notify_all_ms",
            ".0f",
            f"<= {1000 * args.notify_timeout:.0f}",
            at_most("p3_notify_all_ms", 1000 * args.notify_timeout),
        )
        row("3 ... the last one it reached, after ms", "p3_notify_last_ms", ".0f")
        row("3 session threads gone after close, s", "p3_wind_down_s", ".1f")
        row("3 hub threads after close", "p3_threads_after_close", "d")
    row("run time, s", "run_seconds", ".0f")

    width = max(len(r[0]) for r in rows) if rows else 10
    print()
    print(f"{'figure':<{width}}  {'value':>9}  {'target':>8}  result")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 8}  ------")
    for label, value, target, verdict in rows:
        print(f"{label:<{width}}  {value:>9}  {target:>8}  {verdict}")
    if results.checks:
        print()
        print("per socket (nothing lost, duplicated or out of order; seq strictly increasing):")
        for c in results.checks:
            print("  " + c.line())
    cpu = [(k, v) for k, v in f.items() if k.endswith("cpu_percent") and isinstance(v, dict)]
    if cpu:
        print()
        print("CPU, % of one core, during:")
        for key, value in cpu:
            print(f"  {key[:-12]:<12} " + ", ".join(f"{n} {p:.0f}%" for n, p in value.items()))
        disturbed = [k[:-12] for k, v in cpu if v.get("others", 0) > DISTURBED]
        if disturbed:
            print(
                f"  DISTURBED: other processes used more than {DISTURBED:.0f}% of a core during"
                f" {', '.join(disturbed)}: those figures are low; run again on a quiet machine"
            )
    for note in results.notes:
        print("note: " + note)


def pass_(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_argument_group("sizes")
    size.add_argument("--messages", type=int, default=8000, help="phase 1 messages per run (8000)")
    size.add_argument("--threads", type=int, default=6, help="phase 1 poster threads (6)")
    size.add_argument(
        "--post-seconds",
        type=float,
        default=15,
        help="phase 1: stop posting after this many seconds, if --messages are not all sent (15)",
    )
    size.add_argument(
        "--ack-every",
        type=int,
        default=20,
        help="phase 1, second run: the clients ack cumulatively every N events (20) ...",
    )
    size.add_argument(
        "--ack-delay",
        type=float,
        default=0.1,
        help="... or this many seconds after the first unacked event, whichever first (0.1)",
    )
    size.add_argument("--rate", type=float, default=100, help="phase 2 messages/s (100)")
    size.add_argument("--duration", type=float, default=10, help="phase 2 seconds (10)")
    size.add_argument(
        "--latency-threads", type=int, default=8, help="phase 2 sender threads, open loop (8)"
    )
    size.add_argument(
        "--low-rate",
        type=float,
        default=20,
        help="phase 2 also at this lower rate, for reference (no target); 0 skips (20)",
    )
    size.add_argument("--low-duration", type=float, default=5, help="seconds at --low-rate (5)")
    size.add_argument(
        "--latency-ack-every",
        type=int,
        default=1,
        help="phase 2: the clients ack every N events (1: each one)",
    )
    size.add_argument("--warmup", type=int, default=50, help="warm-up messages per run (50)")
    size.add_argument("--idle", type=int, default=1000, help="phase 3 idle sockets (1000)")
    size.add_argument("--hold", type=float, default=20, help="phase 3 seconds held open (20)")
    size.add_argument(
        "--idle-ping-interval",
        type=float,
        default=8,
        help="phase 3 hub's HUB_WS_PING_INTERVAL, so that the hold sees pings (8)",
    )
    size.add_argument(
        "--connect-threads", type=int, default=32, help="phase 3 client threads connecting (32)"
    )
    size.add_argument(
        "--up-timeout",
        type=float,
        default=15,
        help="phase 3: wait at most this long for every platform to be marked up (15)",
    )
    size.add_argument(
        "--notify-timeout",
        type=float,
        default=20,
        help="phase 3: wait at most this long for the notification to reach every socket (20)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="~35 s smoke run: 3 s of posting per run, 2 s of latency, 200 idle sockets held 3 s",
    )
    run.add_argument(
        "--hub-workers",
        type=int,
        default=3,
        help="gunicorn workers of the hub in phases 1-2 (3: one more than this machine's two"
        " cores, the most messages/s of 1-5 workers, as the workers wait on SQLite's write lock;"
        " phase 3 always runs one process, the target being what one process holds)",
    )
    run.add_argument("--phases", default="1,2,3", help="phases to run, comma-separated (1,2,3)")
    run.add_argument(
        "--hub-threads", type=int, default=1100, help="gunicorn --threads, every hub (1100)"
    )
    run.add_argument(
        "--worker-connections",
        type=int,
        default=2000,
        help="gunicorn --worker-connections (2000). Gunicorn's default, 1000, counts every open"
        " socket: at 1,000 WebSockets the worker stops accepting connections, and with"
        " --threads above it HTTP keep-alive is off. 0 leaves gunicorn's default",
    )
    run.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the hubs, e.g. HUB_LEASE_SECONDS=60 (repeatable)",
    )
    run.add_argument(
        "--hub-root",
        type=Path,
        default=ROOT,
        help="the hub's source tree to run (this project); a patched copy tries a fix",
    )
    run.add_argument(
        "--stall-timeout",
        type=float,
        default=30,
        help="give up waiting for frames after this many seconds without progress (30)",
    )
    run.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, db)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 1000)
        args.post_seconds = min(args.post_seconds, 3)
        args.duration = min(args.duration, 2)
        args.low_duration = min(args.low_duration, 1)
        args.warmup = min(args.warmup, 20)
        args.idle = min(args.idle, 200)
        args.hold = min(args.hold, 3)
        args.idle_ping_interval = min(args.idle_ping_interval, 2)
    args.phases = {int(p) for p in args.phases.split(",") if p.strip()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile(max(8192, 3 * args.idle + 1024))
    workdir = Path(tempfile.mkdtemp(prefix="hub-rt-bench-"))
    version = code_version(args.hub_root)
    log(
        f"real-time benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" open files {nofile}, workdir {workdir}"
    )
    log(f"hub code: {args.hub_root} at {version}; arguments: {' '.join(sys.argv[1:]) or '(none)'}")
    bench = Bench(args, workdir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    results: Results | None = None
    try:
        results = bench.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        for hub in (bench.hub, bench.idle_hub):
            if hub is not None:
                log(f"log tail of {hub.dir.name}:\n{hub.log_tail()}")
        results = bench.results
        results.notes.append(f"aborted: {exc}")
    finally:
        bench.close()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if results is None:
        return 130
    results.figures["run_seconds"] = time.monotonic() - started
    report(results, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now().astimezone().isoformat(timespec="seconds"),
                    "argv": sys.argv[1:],
                    "hub_code": version,
                    "cpus": os.cpu_count(),
                    "figures": results.figures,
                    "checks": [c.__dict__ | {"ok": c.ok} for c in results.checks],
                    "notes": results.notes,
                },
                indent=1,
                default=str,
            )
        )
        log(f"figures written to {args.json}")
    ok = all(c.ok for c in results.checks) and not any(
        n.startswith("aborted") for n in results.notes
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
