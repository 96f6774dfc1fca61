"""Delivery benchmark of the hub: throughput, direct-posting limit, latency, replay, memory.

It starts everything itself in a temporary directory: three fast receiving platforms A, B and C
(``bench/receiver.py``, one process each), and the hub on a fresh SQLite database: gunicorn
(gthread, 1 worker, 16 threads) with HUB_DELIVERY=off and ``flask hub deliver`` beside it, the
README's layout for throughput (``--no-delivery-process``: delivery inside the gunicorn worker).
Users 1 on A, B and C share a private room created by A; every message A posts goes to B and C
(2 events per message).

Phases (each checks that nothing is lost, duplicated or out of order, per receiver):

1. throughput   N messages posted as fast as the client can (closed loop, a few threads):
                202 answers/s, and events delivered/s until B and C have all 2N.
2. direct       the same client posts the same payloads straight to B and C: the limit of
                this machine without the hub, and the ratio hub/direct.
3. latency      an open-loop paced sender (fixed rate): receive time - send time, p50/p99/max.
4. replay       C is killed; messages are posted for 20 s (B keeps receiving) and the rest of
                M events queued for C in bulk; C comes back and pings: how fast the hub
                replays its queue.
5. queued       Q events queued for the down C (in bulk, straight into the hub's database
                with the hub's own routing and outbox code; or over HTTP): the hub's RSS with
                them queued; optionally their replay.

A table of CPU use per phase (hub, benchmark, rest of the machine, steal) tells whether
something else running on the machine lowered the figures.

The hub's processes (gunicorn's tree and the delivery process) are sampled every 0.2 s
(psutil) for their peak RSS, together.

    .venv/bin/python bench/bench_delivery.py            # full run, ~2.5-3.5 minutes
    .venv/bin/python bench/bench_delivery.py --quick    # ~30 s smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
RECEIVER = Path(__file__).resolve().parent / "receiver.py"
PY = sys.executable
ADMIN_TOKEN = "bench-admin-token"
TOKENS = {"A": "bench-token-A", "B": "bench-token-B", "C": "bench-token-C"}
T0 = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def stop_process(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, wait: float = 10
) -> None:
    """Stop a process this script started, by its pid only."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def new_session() -> requests.Session:
    """A keep-alive HTTP client; no proxy, netrc or CA-bundle lookups from the environment on
    every call (``trust_env``), which would cost this client ~30% of its CPU per call."""
    session = requests.Session()
    session.trust_env = False
    return session


# --- the receiving platforms ------------------------------------------------------------------


class Receiver:
    """One receiver process (restartable on the same port) and what it has received so far."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.token = TOKENS[name]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.url}/api/"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.http = new_session()
        # Every message received over the run, across restarts: (receive time, text, message id).
        self.received: list[tuple[float, str, Any]] = []
        self._cursor = 0  # index in the current process's list already copied to `received`
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.workdir / f"receiver-{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [PY, str(RECEIVER), "--port", str(self.port), "--token", self.token],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self._cursor = 0
        self.http = new_session()
        wait_until(self._up, 15, f"receiver {self.name} on port {self.port}")

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"receiver {self.name} exited with {self.proc.returncode}")
        try:
            return self.http.get(f"{self.url}/stats", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """Stop it the hard way (SIGKILL): the hub sees connection errors."""
        self.collect()
        stop_process(self.proc, signal.SIGKILL)
        self.http.close()

    def stop(self) -> None:
        stop_process(self.proc)
        self.http.close()

    def stats(self, since: int | None = None) -> dict[str, Any]:
        query = "" if since is None else f"?since={since}"
        return self.http.get(f"{self.url}/stats{query}", timeout=30).json()

    def count(self) -> int:
        """Messages received by the current process."""
        return self.stats()["count"]

    def collect(self) -> None:
        """Copy the messages received since the last call into ``received``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        answer = self.stats(self._cursor)
        self.received.extend(tuple(m) for m in answer["messages"])
        self._cursor += len(answer["messages"])

    def phase(self, prefix: str) -> list[tuple[float, str, Any]]:
        self.collect()
        return [m for m in self.received if isinstance(m[1], str) and m[1].startswith(prefix)]


# --- the hub ----------------------------------------------------------------------------------


class Hub:
    def __init__(self, workdir: Path, receivers: dict[str, Receiver], args: argparse.Namespace):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = workdir / "hub.sqlite3"
        self.db_url = f"sqlite:///{self.db_path}"
        platforms = [
            {
                "id": i,
                "name": r.name,
                "endpoint": r.endpoint,
                "supportAudio": "True",
                "supportImage": "True",
                "token": r.token,
            }
            for i, r in enumerate(receivers.values(), start=1)
        ]
        (workdir / "platforms.json").write_text(json.dumps(platforms, indent=1))
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": self.db_url,
            "HUB_PLATFORMS_FILE": str(workdir / "platforms.json"),
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_LOG_LEVEL": "WARNING",
        }
        for item in args.hub_env:
            name, _, value = item.partition("=")
            self.env[name] = value
        self.threads = args.hub_threads
        self.workers = args.hub_workers
        self.delivery_process = args.delivery_process
        self.deliverer: subprocess.Popen | None = None
        if self.delivery_process:
            self.env["HUB_DELIVERY"] = "off"  # the web server only takes messages in
        self.app = args.wsgi_app
        self.root = args.hub_root
        self.proc: subprocess.Popen | None = None
        self.http = new_session()
        self.log_path = workdir / "hub.log"

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115
        command = [
            PY,
            "-m",
            "gunicorn",
            self.app,
            "-b",
            f"127.0.0.1:{self.port}",
            "-k",
            "gthread",
            "--threads",
            str(self.threads),
            "-w",
            str(self.workers),
            "--no-control-socket",
        ]
        self.proc = subprocess.Popen(
            command, cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, 60, "the hub's /readyz")
        if self.delivery_process:  # after the web server has migrated and loaded the registry
            self.deliverer = subprocess.Popen(
                [PY, "-m", "flask", "--app", self.app.partition(":")[0], "hub", "deliver"],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def pids(self) -> list[int]:
        """The hub's root processes: gunicorn's master, and the delivery process if any."""
        return [p.pid for p in (self.proc, self.deliverer) if p is not None]

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.http.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        stop_process(self.deliverer, wait=15)
        stop_process(self.proc, wait=15)
        self.http.close()

    def post(self, platform: str, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {TOKENS[platform]}"},
            timeout=60,
        )

    def admin_platforms(self) -> dict[str, dict[str, Any]]:
        answer = self.http.get(
            f"{self.url}/admin/platforms",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=60,
        )
        answer.raise_for_status()
        return {p["name"]: p for p in answer.json()}


class MemorySampler(threading.Thread):
    """Sample the RSS of process trees every ``interval`` seconds; keep peaks."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.roots = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.current = 0  # bytes, whole tree
        self.peak = 0
        self.worker_peak = 0  # the largest single process (a gunicorn worker)
        self.window_peak = 0
        self.samples = 0
        self._stop = threading.Event()

    def sample(self) -> int:
        procs = []
        for root in self.roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs += [root, *root.children(recursive=True)]
        sizes = []
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                sizes.append(proc.memory_info().rss)
        total = sum(sizes)
        self.current = total
        self.peak = max(self.peak, total)
        self.worker_peak = max(self.worker_peak, max(sizes, default=0))
        self.window_peak = max(self.window_peak, total)
        self.samples += 1
        return total

    def start_window(self) -> None:
        self.window_peak = self.current

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


class LoadSampler(threading.Thread):
    """Once a second: CPU used by the hub, by this benchmark's other processes, and by the rest
    of the machine (anything else running skews the figures), in cores; and hypervisor steal."""

    def __init__(
        self, hub_pids: list[int], own_pids: Callable[[], set[int]], interval: float = 1.0
    ) -> None:
        super().__init__(name="load-sampler", daemon=True)
        self.hub = [psutil.Process(pid) for pid in hub_pids]
        self.own_pids = own_pids
        self.interval = interval
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.totals = {"hub": 0.0, "bench": 0.0, "other": 0.0, "steal": 0.0, "wall": 0.0}
        self.window = dict.fromkeys(self.totals, 0.0)
        self.other_peak = 0.0
        self._system = self._busy()
        self._clock = time.monotonic()
        self._cpu_of(self._pids())  # prime the per-process counters

    @staticmethod
    def _busy() -> tuple[float, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        return busy, getattr(t, "steal", 0.0)

    def _pids(self) -> tuple[set[int], set[int]]:
        hub = set()
        for root in self.hub:
            with contextlib.suppress(psutil.NoSuchProcess):
                hub |= {root.pid, *(c.pid for c in root.children(recursive=True))}
        return hub, self.own_pids() | {os.getpid()}

    def _cpu_of(self, groups: tuple[set[int], set[int]]) -> list[float]:
        used = []
        for pids in groups:
            total = 0.0
            for pid in pids:
                try:
                    times = psutil.Process(pid).cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                now = times.user + times.system
                total += max(0.0, now - self._last.get(pid, 0.0))
                self._last[pid] = now
            used.append(total)
        return used

    def sample(self) -> None:
        hub, bench = self._cpu_of(self._pids())
        busy, steal = self._busy()
        clock = time.monotonic()
        wall = clock - self._clock
        other = max(0.0, busy - self._system[0] - hub - bench)
        delta = {"hub": hub, "bench": bench, "other": other, "steal": steal - self._system[1]}
        with self._lock:
            for key, value in {**delta, "wall": wall}.items():
                self.totals[key] += value
                self.window[key] += value
            if wall > 0:
                self.other_peak = max(self.other_peak, other / wall)
        self._system, self._clock = (busy, steal), clock

    def start_window(self) -> None:
        self.sample()
        with self._lock:
            self.window = dict.fromkeys(self.totals, 0.0)

    def cores(self, window: bool = True) -> dict[str, float]:
        """Average cores used since ``start_window()`` (or over the whole run)."""
        self.sample()
        with self._lock:
            data = self.window if window else self.totals
            wall = data["wall"] or 1.0
            return {k: v / wall for k, v in data.items() if k != "wall"}

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self.sample()

    def stop(self) -> None:
        self._stop.set()


# --- the client -------------------------------------------------------------------------------


@dataclass
class Sent:
    text: str
    scheduled: float = 0.0  # open loop: when it should have been sent (time.time())
    sent: float = 0.0  # time.time() just before the POST
    acked: float = 0.0  # time.time() once the answer arrived
    status: int = 0
    message_id: Any = None
    error: str = ""


def message_body(text: str, room: int = 1) -> dict[str, Any]:
    return {"roomOriginalPlatform": "A", "roomId": room, "senderId": 1, "text": text}


def make_texts(run: str, phase: str, count: int) -> list[Sent]:
    # Same length for every phase, so payload sizes compare.
    return [Sent(f"{run}-{phase}-{i:07d} bench message") for i in range(count)]


def run_threads(
    threads: list[threading.Thread], progress: Callable[[], str], every: float = 2.0
) -> None:
    for thread in threads:
        thread.start()
    last = time.monotonic()
    while any(t.is_alive() for t in threads):
        time.sleep(0.1)
        if time.monotonic() - last >= every:
            log(progress())
            last = time.monotonic()
    for thread in threads:
        thread.join()


def post_to_hub(
    hub_url: str,
    items: list[Sent],
    threads: int,
    progress: Callable[[int], str],
    rate: float | None = None,
    room: int = 1,
    until: float | None = None,
) -> None:
    """POST /message from A into ``room`` for every item: closed loop, or open loop at ``rate``."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    start = time.time() + 0.05

    def worker() -> None:
        session = new_session()
        session.headers["Authorization"] = f"Bearer {TOKENS['A']}"
        url = f"{hub_url}/message"
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
            item.sent = time.time()
            try:
                answer = session.post(url, json=message_body(item.text, room), timeout=60)
                item.acked = time.time()
                item.status = answer.status_code
                if answer.status_code == 202:
                    item.message_id = answer.json().get("id")
                else:
                    item.error = answer.text[:200]
            except requests.RequestException as exc:
                item.acked = time.time()
                item.error = str(exc)[:200]
            with lock:
                state["done"] += 1
        session.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    run_threads(workers, lambda: progress(state["done"]))


def accepted(items: Iterable[Sent]) -> list[Sent]:
    """The items the hub answered 202, in the order it accepted them (message id)."""
    return sorted((i for i in items if i.status == 202), key=lambda i: i.message_id)


def wait_delivered(
    expected: dict[Receiver, int], label: str, stall_timeout: float, every: float = 2.0
) -> bool:
    """Wait until each receiver's current process has at least its expected message count."""
    last_print = time.monotonic()
    last_total, last_progress = -1, time.monotonic()
    while True:
        counts = {r: r.count() for r in expected}
        if all(counts[r] >= n for r, n in expected.items()):
            return True
        total = sum(counts.values())
        now = time.monotonic()
        if total != last_total:
            last_total, last_progress = total, now
        elif now - last_progress > stall_timeout:
            log(f"{label}: no progress for {stall_timeout:.0f}s; giving up the wait")
            return False
        if now - last_print >= every:
            shown = ", ".join(f"{r.name} {counts[r]}/{n}" for r, n in expected.items())
            log(f"{label}: delivered {shown}")
            last_print = now
        time.sleep(0.05)


@dataclass
class Check:
    """Integrity of one phase at one receiver."""

    phase: str
    receiver: str
    expected: int
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    ordered: bool = True  # whether order is part of the check

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unexpected or self.out_of_order)

    def line(self) -> str:
        order = f"out-of-order {self.out_of_order}" if self.ordered else "order n/a"
        verdict = "OK" if self.ok else "FAIL"
        return (
            f"{self.phase:<11} {self.receiver}: {self.received - self.duplicates}/{self.expected}"
            f" received, missing {self.missing}, duplicates {self.duplicates},"
            f" unexpected {self.unexpected}, {order}  {verdict}"
        )


def check(
    phase: str,
    receiver: Receiver,
    prefix: str,
    expected_order: list[str],
    ordered: bool = True,
) -> Check:
    got = [m[1] for m in receiver.phase(prefix)]
    result = Check(phase, receiver.name, len(expected_order), received=len(got), ordered=ordered)
    rank = {text: i for i, text in enumerate(expected_order)}
    seen: set[str] = set()
    previous = -1
    for text in got:
        if text in seen:
            result.duplicates += 1
            continue
        seen.add(text)
        position = rank.get(text)
        if position is None:
            result.unexpected += 1
            continue
        if ordered and position < previous:
            result.out_of_order += 1
        previous = max(previous, position)
    result.missing = len(set(expected_order) - seen)
    return result


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> cores used


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.receivers = {name: Receiver(name, workdir) for name in ("A", "B", "C")}
        self.hub = Hub(workdir, self.receivers, args)
        self.memory: MemorySampler | None = None
        self.load: LoadSampler | None = None
        self.results = Results()
        self.cpu = self.results.cpu

    @property
    def b(self) -> Receiver:
        return self.receivers["B"]

    @property
    def c(self) -> Receiver:
        return self.receivers["C"]

    def prefix(self, phase: str) -> str:
        return f"{self.run_id}-{phase}-"

    def delivered_since(self, base: dict[Receiver, int]) -> str:
        return ", ".join(f"{r.name} {r.count() - n}" for r, n in base.items()) + " delivered"

    def figure(self, name: str, value: Any) -> None:
        self.results.figures[name] = value

    # setup

    def setup(self) -> None:
        for receiver in self.receivers.values():
            receiver.start()
        log(
            "receivers A, B, C up on ports "
            + ", ".join(str(r.port) for r in self.receivers.values())
        )
        started = time.monotonic()
        self.hub.start()
        log(f"hub up on port {self.hub.port} in {time.monotonic() - started:.1f}s ({self.workdir})")
        self.memory = MemorySampler(self.hub.pids())
        self.memory.start()
        self.load = LoadSampler(
            self.hub.pids(),
            lambda: {r.proc.pid for r in self.receivers.values() if r.proc is not None},
        )
        self.load.start()
        for name, user in (("A", "alice"), ("B", "bob"), ("C", "carol")):
            answer = self.hub.post(name, "/user", {"id": 1, "name": user})
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"POST /user on {name}: {answer.status_code} {answer.text}")
        room = {
            "id": 1,
            "name": "bench",
            "type": "private",
            "users": [{"A": [1]}, {"B": [1]}, {"C": [1]}],
        }
        answer = self.hub.post("A", "/room", room)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST /room: {answer.status_code} {answer.text}")
        # A room of A and C only: its messages are one event each, for C (phases 4 and 5).
        room = {"id": 2, "name": "bench-ac", "type": "private", "users": [{"A": [1]}, {"C": [1]}]}
        answer = self.hub.post("A", "/room", room)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST /room: {answer.status_code} {answer.text}")
        # Warm up: connections, code paths, and the payload sample of the direct phase.
        items = make_texts(self.run_id, "w", self.args.warmup)
        post_to_hub(self.hub.url, items, self.args.threads, lambda d: f"warm-up: {d}")
        self._require_accepted("warm-up", items)
        base = {r: 0 for r in (self.b, self.c)}
        if not wait_delivered({r: base[r] + len(items) for r in base}, "warm-up", 60):
            raise RuntimeError(
                "the warm-up messages were not delivered; see " + str(self.hub.log_path)
            )
        log(f"setup done: users, room, {len(items)} warm-up messages delivered to B and C")

    def _require_accepted(self, label: str, items: list[Sent]) -> list[Sent]:
        ok = accepted(items)
        failed = [i for i in items if i.status != 202]
        if failed:
            sample = failed[0]
            note = (
                f"{label}: {len(failed)} of {len(items)} POSTs not accepted"
                f" (first: {sample.status} {sample.error})"
            )
            log(note)
            self.results.notes.append(note)
        return ok

    # phase 1

    def throughput(self) -> None:
        n = self.args.messages
        log(
            f"phase 1 - hub throughput: {n} messages, {self.args.threads} client threads,"
            " closed loop"
        )
        prefix = self.prefix("p1")
        items = make_texts(self.run_id, "p1", n)
        base = {r: r.count() for r in (self.b, self.c)}
        post_to_hub(
            self.hub.url,
            items,
            self.args.threads,
            lambda d: f"phase 1: {d}/{n} posted; {self.delivered_since(base)}",
        )
        ok = self._require_accepted("phase 1", items)
        first = min(i.sent for i in items)
        last_ack = max(i.acked for i in items)
        log(f"phase 1: {len(ok)} accepted in {last_ack - first:.2f}s; waiting for delivery")
        done = wait_delivered(
            {r: base[r] + len(ok) for r in base}, "phase 1", self.args.stall_timeout
        )
        order = [i.text for i in ok]
        received = [m for r in (self.b, self.c) for m in r.phase(prefix)]
        last_receipt = max((m[0] for m in received), default=float("nan"))
        self.results.checks += [check("throughput", r, prefix, order) for r in (self.b, self.c)]
        accept_rate = len(ok) / (last_ack - first)
        events_rate = len(received) / (last_receipt - first)
        self.figure("p1_messages", n)
        self.figure("p1_accept_seconds", last_ack - first)
        self.figure("p1_accepted_per_s", accept_rate)
        self.figure("p1_delivery_seconds", last_receipt - first)
        self.figure("p1_events_per_s", events_rate)
        self.figure("p1_messages_delivered_per_s", events_rate / 2)
        self.figure("p1_delivery_lag_s", last_receipt - last_ack)
        self.figure("p1_complete", done)
        log(
            f"phase 1: {accept_rate:.0f} messages accepted/s; {events_rate:.0f} events delivered/s"
            f" ({events_rate / 2:.0f} messages/s to both); last receipt"
            f" {last_receipt - last_ack:.2f}s after the last 202"
        )

    # phase 2

    def direct(self) -> None:
        n = self.args.direct_messages
        log(
            f"phase 2 - direct posting to B and C: {n} messages, {self.args.threads} client threads"
        )
        prefix = self.prefix("p2")
        sample = self.b.stats().get("sample")
        template = json.loads(sample) if sample else {"text": ""}
        items = make_texts(self.run_id, "p2", n)
        base = {r: r.count() for r in (self.b, self.c)}
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "errors": 0}
        body_sizes: list[int] = []

        def worker() -> None:
            sessions = {}
            for receiver in (self.b, self.c):
                session = new_session()
                session.headers["Authorization"] = f"Bearer {receiver.token}"
                sessions[receiver] = session
            while True:
                with lock:
                    index = state["next"]
                    state["next"] += 1
                if index >= n:
                    break
                item = items[index]
                payload = json.dumps(
                    {**template, "id": index + 1, "text": item.text},
                    separators=(",", ":"),
                    ensure_ascii=False,
                ).encode()
                if index == 0:
                    body_sizes.append(len(payload))
                # The same headers as the hub's calls (values of the same size; nothing signed).
                headers = {
                    "Content-Type": "application/json",
                    "webhook-id": f"evt_{uuid.uuid4().hex}",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1," + "A" * 43 + "=",
                }
                item.sent = time.time()
                status = 200
                for receiver, session in sessions.items():
                    try:
                        answer = session.post(
                            f"{receiver.endpoint}message", data=payload, headers=headers, timeout=60
                        )
                        status = max(status, answer.status_code)
                    except requests.RequestException as exc:
                        status, item.error = 599, str(exc)[:200]
                item.acked = time.time()
                item.status = status
                with lock:
                    state["done"] += 1
                    state["errors"] += status != 200
            for session in sessions.values():
                session.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.args.threads)]
        run_threads(threads, lambda: f"phase 2: {state['done']}/{n} posted to both")
        wait_delivered({r: base[r] + n for r in base}, "phase 2", self.args.stall_timeout)
        first = min(i.sent for i in items)
        last = max(i.acked for i in items)
        rate = n / (last - first)
        order = [i.text for i in items]
        self.results.checks += [
            check("direct", r, prefix, order, ordered=False) for r in (self.b, self.c)
        ]
        self.figure("p2_messages", n)
        self.figure("p2_seconds", last - first)
        self.figure("p2_messages_per_s", rate)
        self.figure("p2_events_per_s", 2 * rate)
        self.figure("p2_errors", state["errors"])
        self.figure("p2_body_bytes", body_sizes[0] if body_sizes else None)
        sample_len = len(sample.encode()) if sample else None
        self.figure("hub_body_bytes", sample_len)
        log(
            f"phase 2: {rate:.0f} messages/s to both B and C ({2 * rate:.0f} posts/s);"
            f" body {body_sizes[0] if body_sizes else '?'} bytes (the hub's: {sample_len})"
        )
        if self.args.stream_seconds > 0:
            self.one_stream(template)

    def one_stream(self, template: dict[str, Any]) -> None:
        """The ceiling of one in-order stream (what a replay to one platform can reach): post
        to B one call at a time, each after the previous answer, for a few seconds, with
        ``urllib3``, with bare ``http.client``, and with the hub's own ``RestAdapter.send``
        (from ``--hub-root``: signing, headers and the reading of the answer included)."""
        import http.client

        import urllib3

        if str(self.hub.root) not in sys.path:
            sys.path.insert(0, str(self.hub.root))
        from adapters.base import OutgoingEvent, PlatformTarget
        from adapters.rest import RestAdapter

        seconds = self.args.stream_seconds
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.b.token}",
            "webhook-id": f"evt_{uuid.uuid4().hex}",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1," + "A" * 43 + "=",
        }

        def body(i: int) -> bytes:
            text = f"{self.run_id}-p2s-{i:07d} bench message"
            return json.dumps({**template, "text": text}, separators=(",", ":")).encode()

        def measure(post: Callable[[bytes], None]) -> float:
            count, started = 0, time.monotonic()
            while time.monotonic() - started < seconds:
                post(body(count))
                count += 1
            return count / (time.monotonic() - started)

        pool = urllib3.PoolManager(maxsize=1, retries=False)
        url = f"{self.b.endpoint}message"
        with_urllib3 = measure(lambda data: pool.request("POST", url, body=data, headers=headers))
        pool.clear()
        connection = http.client.HTTPConnection("127.0.0.1", self.b.port, timeout=10)

        def bare(data: bytes) -> None:
            connection.request("POST", "/api/message", body=data, headers=headers)
            connection.getresponse().read()

        with_http_client = measure(bare)
        connection.close()
        adapter = RestAdapter(PlatformTarget(0, "B", "rest", self.b.endpoint, self.b.token), 10.0)

        def hub_send(data: bytes) -> None:
            adapter.send(OutgoingEvent(f"evt_{uuid.uuid4().hex}", 0, "message", data.decode()))

        with_adapter = measure(hub_send)
        adapter.close()
        self.figure("p2_one_stream_urllib3_per_s", with_urllib3)
        self.figure("p2_one_stream_http_client_per_s", with_http_client)
        self.figure("p2_one_stream_rest_adapter_per_s", with_adapter)
        log(
            f"phase 2: one in-order stream to B: {with_urllib3:.0f} posts/s with urllib3,"
            f" {with_http_client:.0f} posts/s with http.client, {with_adapter:.0f} posts/s with"
            " the hub's RestAdapter"
        )

    # phase 3

    def latency(self) -> None:
        rate, duration = self.args.rate, self.args.duration
        n = max(1, round(rate * duration))
        log(
            f"phase 3 - latency at {rate:g} msg/s for {duration:g}s ({n} messages, open loop,"
            f" {self.args.latency_threads} sender threads)"
        )
        prefix = self.prefix("p3")
        items = make_texts(self.run_id, "p3", n)
        base = {r: r.count() for r in (self.b, self.c)}
        post_to_hub(
            self.hub.url,
            items,
            self.args.latency_threads,
            lambda d: f"phase 3: {d}/{n} posted; {self.delivered_since(base)}",
            rate=rate,
            until=time.time() + self.args.duration * 3,
        )
        unsent = [i for i in items if not i.sent]
        if unsent:
            note = (
                f"phase 3: the sender fell behind; {len(unsent)} of {n} messages not sent by"
                f" {3 * duration:g}s (the hub answers slower than {rate:g} msg/s)"
            )
            log(note)
            self.results.notes.append(note)
            items = [i for i in items if i.sent]
        ok = self._require_accepted("phase 3", items)
        done = wait_delivered(
            {r: base[r] + len(ok) for r in base}, "phase 3", self.args.stall_timeout
        )
        by_text = {i.text: i for i in ok}
        latencies: list[float] = []
        from_schedule: list[float] = []
        for receiver in (self.b, self.c):
            for received_at, text, _ in receiver.phase(prefix):
                item = by_text.get(text)
                if item is not None:
                    latencies.append(received_at - item.sent)
                    from_schedule.append(received_at - item.scheduled)
        self.results.checks += [
            check("latency", r, prefix, [i.text for i in ok]) for r in (self.b, self.c)
        ]
        achieved = len(items) / (max(i.sent for i in items) - min(i.sent for i in items) or 1)
        lag = max(i.sent - i.scheduled for i in items)
        answer_ms = [1000 * (i.acked - i.sent) for i in items]
        self.figure("p3_rate", rate)
        self.figure("p3_achieved_rate", achieved)
        self.figure("p3_sender_max_lag_ms", 1000 * lag)
        self.figure("p3_post_p50_ms", percentile(answer_ms, 50))
        self.figure("p3_post_p99_ms", percentile(answer_ms, 99))
        self.figure("p3_complete", done)
        if latencies:
            ms = [1000 * x for x in latencies]
            self.figure("p3_p50_ms", percentile(ms, 50))
            self.figure("p3_p90_ms", percentile(ms, 90))
            self.figure("p3_p99_ms", percentile(ms, 99))
            self.figure("p3_max_ms", max(ms))
            self.figure("p3_mean_ms", statistics.fmean(ms))
            self.figure(
                "p3_p99_from_schedule_ms", percentile([1000 * x for x in from_schedule], 99)
            )
            log(
                f"phase 3: end-to-end latency p50 {percentile(ms, 50):.1f} ms,"
                f" p99 {percentile(ms, 99):.1f} ms,"
                f" max {max(ms):.1f} ms over {len(ms)} events; POST /message p50"
                f" {percentile(answer_ms, 50):.1f} ms, p99 {percentile(answer_ms, 99):.1f} ms;"
                f" sender lag max {1000 * lag:.1f} ms"
            )

    # phase 4

    def wait_queue_depth(self, name: str, depth: int, timeout: float) -> float:
        """Wait until the admin view shows ``depth`` events queued for ``name``; return when."""
        started = time.monotonic()
        last_print = started
        while True:
            view = self.hub.admin_platforms()[name]
            if view["queueDepth"] >= depth:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name}'s queueDepth stays at {view['queueDepth']} (< {depth})")
            if time.monotonic() - last_print > 2:
                log(f"waiting for {name} queueDepth {view['queueDepth']}/{depth}")
                last_print = time.monotonic()
            time.sleep(0.2)

    def ping(self, platform: str) -> float:
        started = time.time()
        answer = self.hub.post(platform, "/ping", {})
        if answer.status_code != 200:
            raise RuntimeError(f"POST /ping as {platform}: {answer.status_code} {answer.text}")
        log(
            f"POST /ping as {platform}: {answer.json().get('message')}"
            f" ({1000 * (time.time() - started):.0f} ms)"
        )
        return started

    def replay(self) -> None:
        m = self.args.replay
        log(
            f"phase 4 - replay: C killed, {m} events queued for it (POST /message for up to"
            f" {self.args.replay_post_seconds:g}s, B receiving them; the rest queued in bulk),"
            " then C restarted and pings"
        )
        prefix = self.prefix("p4")
        self.c.kill()
        items = make_texts(self.run_id, "p4", m)
        base_b = self.b.count()
        deadline = time.time() + self.args.replay_post_seconds
        post_to_hub(
            self.hub.url,
            items,
            self.args.threads,
            lambda d: f"phase 4: {d} posted; B {self.b.count() - base_b} delivered, C down",
            until=deadline,
        )
        posted = [i for i in items if i.sent]
        ok = self._require_accepted("phase 4", posted)
        if posted:
            first = min(i.sent for i in posted)
            last_ack = max(i.acked for i in posted)
            rate = len(ok) / (last_ack - first)
            self.figure("p4_posted", len(posted))
            self.figure("p4_accepted_per_s_c_down", rate)
            log(f"phase 4: {len(ok)} accepted over HTTP in {last_ack - first:.1f}s ({rate:.0f}/s)")
        rest = [i for i in items if not i.sent]
        if rest:
            took, method = self.queue_for_c(rest, "phase 4")
            self.figure("p4_bulk_queued", len(rest))
            log(f"phase 4: {len(rest)} more queued for C ({method}) in {took:.1f}s")
        wait_delivered({self.b: base_b + len(ok)}, "phase 4 (B)", self.args.stall_timeout)
        b_check = check("replay", self.b, prefix, [i.text for i in ok])
        expected = accepted(items)
        waited = self.wait_queue_depth("C", len(expected), 120)
        view = self.hub.admin_platforms()["C"]
        log(
            f"phase 4: C queueDepth {view['queueDepth']} (health {view['health']},"
            f" next attempt {view['nextAttemptAt']}) after {waited:.1f}s more"
        )
        self.c.start()
        pinged = self.ping("C")
        done = wait_delivered(
            {self.c: len(expected)}, "phase 4 (C replay)", self.args.stall_timeout
        )
        received = self.c.phase(prefix)
        last_receipt = max((m[0] for m in received), default=float("nan"))
        first_receipt = min((m[0] for m in received), default=float("nan"))
        self.results.checks += [
            b_check,
            check("replay", self.c, prefix, [i.text for i in expected]),
        ]
        rate = len(received) / (last_receipt - pinged)
        self.figure("p4_events", len(expected))
        self.figure("p4_replay_seconds", last_receipt - pinged)
        self.figure("p4_first_event_after_ping_ms", 1000 * (first_receipt - pinged))
        self.figure("p4_replay_events_per_s", rate)
        self.figure("p4_complete", done)
        log(
            f"phase 4: C got {len(received)} queued events in {last_receipt - pinged:.2f}s after"
            f" the ping ({rate:.0f} events/s; first one after"
            f" {1000 * (first_receipt - pinged):.0f} ms)"
        )

    # phase 5

    def post_for_c(self, items: list[Sent], label: str) -> None:
        """POST /message into room 2 (A and C): one event each, for C."""
        n = len(items)
        post_to_hub(
            self.hub.url, items, self.args.threads, lambda d: f"{label}: {d}/{n} posted", room=2
        )
        self._require_accepted(label, items)

    def queue_for_c(self, items: list[Sent], label: str) -> tuple[float, str]:
        """Queue one event per item for C, in bulk; over HTTP if the hub's code no longer fits."""
        started = time.monotonic()
        try:
            return self.bulk_queue(items, room=2, receivers=["C"], label=label), "bulk"
        except Exception as exc:
            note = f"{label}: bulk queueing failed ({type(exc).__name__}: {exc}); POSTing instead"
            log(note)
            self.results.notes.append(note)
            self.post_for_c([i for i in items if i.status != 202], label)
            return time.monotonic() - started, "http"

    def bulk_queue(self, items: list[Sent], room: int, receivers: list[str], label: str) -> float:
        """Save messages from A's user 1 into ``room`` and queue their events for ``receivers``,
        straight into the hub's database with the hub's own code (routing, outbox), 2,000
        messages a transaction: what POST /message stores, without HTTP and per-call overhead.
        The hub is not woken (its workers see the events on their next poll or /ping)."""
        if str(self.hub.root) not in sys.path:
            sys.path.insert(0, str(self.hub.root))
        from hub.message_routing import (
            load_room,
            load_sender,
            message_payload,
            message_receivers,
        )

        from hub import outbox
        from hub.db import Database
        from hub.ingest import store_message
        from hub.models import EventKind

        db = Database(self.hub.db_url)
        started = last = time.monotonic()
        try:
            for start in range(0, len(items), 2000):
                chunk = items[start : start + 2000]
                with db.write() as session:
                    room_view = load_room(session, "A", room)
                    origin_id = room_view.platform_id
                    sender = load_sender(session, origin_id, "A", 1)
                    targets = [
                        r
                        for r in message_receivers(session, room_view, origin_id)
                        if r.name in receivers
                    ]
                    connection = session.connection()
                    messages = [
                        store_message(connection, room_view, sender, item.text) for item in chunk
                    ]
                    for receiver in targets:
                        payloads = [
                            message_payload(m, room_view, sender, receiver) for m in messages
                        ]
                        outbox.enqueue(session, receiver.id, EventKind.MESSAGE, payloads)
                now = time.time()
                for item, message in zip(chunk, messages, strict=True):
                    item.sent = item.acked = now
                    item.status, item.message_id = 202, message.id
                if time.monotonic() - last > 2:
                    log(f"{label}: {start + len(chunk)}/{len(items)} queued in bulk")
                    last = time.monotonic()
        finally:
            db.dispose()
        return time.monotonic() - started

    def queued(self) -> None:
        q = self.args.queued
        log(f"phase 5 - {q} events queued for a down C ({self.args.queue_method})")
        prefix = self.prefix("p5")
        self.c.kill()
        self.memory.start_window()
        before = self.memory.sample()
        items = make_texts(self.run_id, "p5", q)
        started = time.monotonic()
        if self.args.queue_method == "http":
            self.post_for_c(items, "phase 5")
        else:
            _, method = self.queue_for_c(items, "phase 5")
            self.figure("p5_queue_method", method)
        took = time.monotonic() - started
        expected = accepted(items)
        waited = self.wait_queue_depth("C", len(expected), 120)
        admin_started = time.monotonic()
        view = self.hub.admin_platforms()["C"]
        admin_ms = 1000 * (time.monotonic() - admin_started)
        time.sleep(1.0)  # the hub at rest with its queue
        rss = self.memory.sample()
        self.figure("p5_queued", view["queueDepth"])
        self.figure("p5_queue_seconds", took)
        self.results.figures.setdefault("p5_queue_method", self.args.queue_method)
        self.figure("p5_admin_platforms_ms", admin_ms)
        self.figure("p5_rss_before_mb", before / 2**20)
        self.figure("p5_rss_queued_mb", rss / 2**20)
        self.figure("p5_rss_peak_while_queueing_mb", self.memory.window_peak / 2**20)
        log(
            f"phase 5: {view['queueDepth']} events queued for C in {took:.1f}s"
            f" (+{waited:.1f}s to show); hub RSS {rss / 2**20:.0f} MB (was"
            f" {before / 2**20:.0f} MB); GET /admin/platforms {admin_ms:.0f} ms"
        )
        self.c.start()
        if self.args.replay_queued:
            self.memory.start_window()
            pinged = self.ping("C")
            done = wait_delivered(
                {self.c: len(expected)}, "phase 5 (C replay)", self.args.stall_timeout
            )
            received = self.c.phase(prefix)
            last_receipt = max((m[0] for m in received), default=float("nan"))
            rate = len(received) / (last_receipt - pinged)
            self.results.checks.append(check("queued", self.c, prefix, [i.text for i in expected]))
            self.figure("p5_replay_events_per_s", rate)
            self.figure("p5_rss_peak_replay_mb", self.memory.window_peak / 2**20)
            self.figure("p5_replay_complete", done)
            log(
                f"phase 5: replayed {len(received)} events in {last_receipt - pinged:.1f}s"
                f" ({rate:.0f}/s); hub RSS peak during the replay"
                f" {self.memory.window_peak / 2**20:.0f} MB"
            )

    # the whole run

    def run(self) -> Results:
        started = time.monotonic()
        phases = self.args.phases
        steps = [
            (1, "throughput", self.throughput),
            (2, "direct", self.direct),
            (3, "latency", self.latency),
            (4, "replay", self.replay),
            (5, "queued", self.queued),
        ]
        try:
            self.setup()
            for number, name, step in steps:
                if number not in phases or (number == 5 and self.args.queued <= 0):
                    continue
                self.load.start_window()
                try:
                    step()
                finally:
                    self.cpu[name] = self.load.cores()
        finally:
            if self.load is not None:
                self.cpu["whole run"] = self.load.cores(window=False)
                self.load.stop()
            if self.memory is not None:
                self.memory.sample()
                self.memory.stop()
                self.figure("rss_peak_mb", self.memory.peak / 2**20)
                self.figure("rss_worker_peak_mb", self.memory.worker_peak / 2**20)
                self.figure("rss_samples", self.memory.samples)
            self.figure("run_seconds", time.monotonic() - started)
        return self.results

    def close(self) -> None:
        self.hub.stop()
        for receiver in self.receivers.values():
            receiver.stop()


# --- report -----------------------------------------------------------------------------------


def verdict(value: float | None, good: Callable[[float], bool]) -> str:
    if value is None or value != value:  # missing or NaN
        return "n/a"
    return "PASS" if good(value) else "MISS"


def report(results: Results, args: argparse.Namespace) -> None:
    f = results.figures
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, key: str, fmt: str, target: str = "", ok: str = "") -> None:
        if key in f and f[key] is not None:
            rows.append((label, format(f[key], fmt), target, ok))

    hub_rate = f.get("p1_messages_delivered_per_s")
    direct_rate = f.get("p2_messages_per_s")
    row("1 messages accepted (202)/s", "p1_accepted_per_s", ".0f")
    row("1 events delivered/s (B+C)", "p1_events_per_s", ".0f")
    row("1 messages delivered to both/s", "p1_messages_delivered_per_s", ".0f")
    row("1 last receipt after last 202, s", "p1_delivery_lag_s", ".2f")
    row("2 direct posting, messages to both/s", "p2_messages_per_s", ".0f")
    if hub_rate and direct_rate:
        ratio = hub_rate / direct_rate
        rows.append(
            ("2 ratio hub/direct", f"{ratio:.2f}", ">= 0.50", verdict(ratio, lambda x: x >= 0.5))
        )
    row("2 one in-order stream, urllib3, posts/s", "p2_one_stream_urllib3_per_s", ".0f")
    row("2 one in-order stream, http.client, posts/s", "p2_one_stream_http_client_per_s", ".0f")
    row("2 one in-order stream, hub's adapter, posts/s", "p2_one_stream_rest_adapter_per_s", ".0f")
    row("3 rate the sender achieved, msg/s", "p3_achieved_rate", ".0f")
    row("3 latency p50, ms", "p3_p50_ms", ".1f")
    row(
        f"3 latency p99 at {f.get('p3_rate', args.rate):g} msg/s, ms",
        "p3_p99_ms",
        ".1f",
        "< 50",
        verdict(f.get("p3_p99_ms"), lambda x: x < 50),
    )
    row("3 latency max, ms", "p3_max_ms", ".1f")
    row("3 POST /message p99, ms", "p3_post_p99_ms", ".1f")
    row("3 sender max lag behind schedule, ms", "p3_sender_max_lag_ms", ".1f")
    row("4 accepted/s with C down (HTTP part)", "p4_accepted_per_s_c_down", ".0f")
    row("4 events queued for C: posted", "p4_posted", "d")
    row("4 events queued for C: in bulk", "p4_bulk_queued", "d")
    row(
        "4 replay, events/s",
        "p4_replay_events_per_s",
        ".0f",
        ">= 2000",
        verdict(f.get("p4_replay_events_per_s"), lambda x: x >= 2000),
    )
    row("4 first replayed event after /ping, ms", "p4_first_event_after_ping_ms", ".0f")
    row("5 events queued", "p5_queued", "d")
    row(f"5 time to queue them ({f.get('p5_queue_method', '')}), s", "p5_queue_seconds", ".1f")
    row(
        "5 hub RSS with them queued, MB",
        "p5_rss_queued_mb",
        ".0f",
        "< 200",
        verdict(f.get("p5_rss_queued_mb"), lambda x: x < 200),
    )
    row("5 GET /admin/platforms with them queued, ms", "p5_admin_platforms_ms", ".0f")
    row("5 replay of them, events/s", "p5_replay_events_per_s", ".0f")
    row("5 hub RSS peak during that replay, MB", "p5_rss_peak_replay_mb", ".0f")
    row("hub RSS peak over the run (tree), MB", "rss_peak_mb", ".0f")
    row("hub RSS peak, largest process, MB", "rss_worker_peak_mb", ".0f")
    row("run time, s", "run_seconds", ".0f")

    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'figure':<{width}}  {'value':>9}  {'target':>8}  result")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 8}  ------")
    for label, value, target, ok in rows:
        print(f"{label:<{width}}  {value:>9}  {target:>8}  {ok}")
    if results.cpu:
        print()
        print(
            f"CPU, in cores (this machine has {os.cpu_count()}): hub / bench+receivers /"
            " rest of the machine / hypervisor steal"
        )
        busy = False
        for phase, c in results.cpu.items():
            flag = ""
            if c["other"] > 0.2:
                flag, busy = "  <- something else is running", True
            print(
                f"  {phase:<11} {c['hub']:5.2f} / {c['bench']:5.2f} / {c['other']:5.2f}"
                f" / {c['steal']:5.2f}{flag}"
            )
        if busy:
            print("  => other processes took CPU during the run: these figures are low")
    print()
    print("nothing lost, nothing out of order:")
    for c in results.checks:
        print("  " + c.line())
    all_ok = all(c.ok for c in results.checks)
    print(
        f"  => {'nothing lost, nothing out of order' if all_ok else 'LOSS, DUPLICATES OR DISORDER'}"
    )
    for note in results.notes:
        print("note: " + note)


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_argument_group("sizes")
    size.add_argument("--messages", type=int, default=3000, help="phase 1 messages (3000)")
    size.add_argument("--direct-messages", type=int, help="phase 2 messages (default: --messages)")
    size.add_argument("--threads", type=int, default=4, help="client threads, phases 1, 2, 4 (4)")
    size.add_argument("--rate", type=float, default=200, help="phase 3 messages/s (200)")
    size.add_argument("--duration", type=float, default=10, help="phase 3 seconds (10)")
    size.add_argument(
        "--latency-threads", type=int, default=8, help="phase 3 sender threads (open loop) (8)"
    )
    size.add_argument(
        "--stream-seconds",
        type=float,
        default=1.5,
        help="phase 2: seconds of each one-stream ceiling measurement; 0 skips (1.5)",
    )
    size.add_argument("--replay", type=int, default=10000, help="phase 4 messages (10000)")
    size.add_argument(
        "--queued", type=int, default=100000, help="phase 5 events queued; 0 skips (100000)"
    )
    size.add_argument(
        "--replay-post-seconds",
        type=float,
        default=20,
        help="phase 4: POST /message for at most this long (B receives them while C is down);"
        " the rest of --replay is queued in bulk (20)",
    )
    size.add_argument(
        "--queue-method",
        choices=("bulk", "http"),
        default="bulk",
        help="phase 5: queue in bulk, straight into the hub's database with the hub's own"
        " routing and outbox code, 2,000 messages a transaction (fast; default), or by"
        " POST /message (as slow as the hub accepts)",
    )
    size.add_argument(
        "--replay-queued",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="phase 5: also replay the queued events to C and time it (off)",
    )
    size.add_argument("--warmup", type=int, default=100, help="warm-up messages (100)")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="~30 s smoke run: 400 messages, 3 s of latency, replay 1000, no phase 5",
    )
    run.add_argument(
        "--phases", default="1,2,3,4,5", help="phases to run, comma-separated (1,2,3,4,5)"
    )
    run.add_argument("--hub-threads", type=int, default=16, help="gunicorn --threads (16)")
    run.add_argument("--hub-workers", type=int, default=1, help="gunicorn -w: hub processes (1)")
    run.add_argument(
        "--delivery-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run gunicorn with HUB_DELIVERY=off and `flask hub deliver` beside it, the"
        " README's layout for throughput (on); --no-delivery-process: delivery inside the"
        " gunicorn worker",
    )
    run.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the hub, e.g. HUB_DELIVERY_BATCH=500 (repeatable)",
    )
    run.add_argument(
        "--hub-root",
        type=Path,
        default=ROOT,
        help="the hub's source tree to run, e.g. a `git archive` snapshot (this project)",
    )
    run.add_argument(
        "--wsgi-app",
        default="wsgi:app",
        metavar="MODULE:APP",
        help="what gunicorn serves, from the project root (wsgi:app); with --hub-env"
        " PYTHONPATH=... it can be a patched copy, to try a fix",
    )
    run.add_argument(
        "--stall-timeout",
        type=float,
        default=30,
        help="give up waiting for deliveries after this many seconds without progress (30)",
    )
    run.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, db)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = min(args.messages, 400)
        args.duration = min(args.duration, 3)
        args.replay = min(args.replay, 1000)
        args.replay_post_seconds = min(args.replay_post_seconds, 4)
        args.stream_seconds = min(args.stream_seconds, 1)
        args.queued = 0
        args.warmup = min(args.warmup, 20)
    if args.direct_messages is None:
        args.direct_messages = args.messages
    args.phases = {int(p) for p in args.phases.split(",") if p.strip()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    log(
        f"delivery benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" workdir {workdir}"
    )
    try:
        bench = Bench(args, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: Results | None = None
    try:
        results = bench.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as exc:
        log(f"benchmark failed: {exc}")
        log("hub log tail:\n" + bench.hub.log_tail())
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
    report(results, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "figures": results.figures,
                    "cpu": results.cpu,
                    "checks": [c.__dict__ | {"ok": c.ok} for c in results.checks],
                },
                indent=1,
                default=str,
            )
        )
    ok = all(c.ok for c in results.checks) and not any(
        n.startswith("aborted") for n in results.notes
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
