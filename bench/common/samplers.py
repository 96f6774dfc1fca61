"""What the machine spends during a benchmark: RSS of process trees, CPU of the hub, of the
benchmark's own processes and of the rest of the machine, and hypervisor steal (psutil)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable

import psutil


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of one process."""
    times = process.cpu_times()
    return times.user + times.system


def process_cpu(pid: int) -> Callable[[], float]:
    """A reader of one process's CPU seconds (0 once it is gone)."""

    def read() -> float:
        try:
            return cpu_seconds(psutil.Process(pid))
        except psutil.Error:
            return 0.0

    return read


def machine_busy() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (steal excluded), and stolen, since boot."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
    return busy, getattr(t, "steal", 0.0)


def trees(roots: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The roots that still run, and all their children."""
    found: list[psutil.Process] = []
    for root in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [root, *root.children(recursive=True)]
    return found


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
        sizes = []
        for proc in trees(self.roots):
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
        self._system = machine_busy()
        self._clock = time.monotonic()
        self._cpu_of(self._pids())  # prime the per-process counters

    def _pids(self) -> tuple[set[int], set[int]]:
        hub = {p.pid for p in trees(self.hub)}
        return hub, self.own_pids() | {os.getpid()}

    def _cpu_of(self, groups: tuple[set[int], set[int]]) -> list[float]:
        used = []
        for pids in groups:
            total = 0.0
            for pid in pids:
                try:
                    now = cpu_seconds(psutil.Process(pid))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += max(0.0, now - self._last.get(pid, 0.0))
                self._last[pid] = now
            used.append(total)
        return used

    def sample(self) -> None:
        hub, bench = self._cpu_of(self._pids())
        busy, steal = machine_busy()
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
        """CPU seconds of this process and every process it started (hub, clients, receiver),
        with the children they have reaped."""
        found: dict[int, float] = {}
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                found[proc.pid] = (
                    times.user + times.system + times.children_user + times.children_system
                )
        return found

    def start(self) -> CpuMeter:
        self.before = {name: read() for name, read in self.sources.items()}
        self.ours_before = self._ours()
        self.machine_before = machine_busy()
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.started, 1e-9)
        self.percent = {
            name: 100 * (read() - self.before[name]) / wall for name, read in self.sources.items()
        }
        ours = sum(value - self.ours_before.get(pid, 0.0) for pid, value in self._ours().items())
        busy, steal = machine_busy()
        others = busy - self.machine_before[0] - ours
        self.percent["others"] = max(0.0, 100 * others / wall)
        self.percent["steal"] = 100 * (steal - self.machine_before[1]) / wall
        return self.percent

    def text(self) -> str:
        return ", ".join(f"{name} {value:.0f}%" for name, value in self.percent.items())
