"""Small helpers every benchmark uses: logging, ports, waiting, percentiles, processes, HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent.parent  # the project: the hub's default source tree
BENCH = ROOT / "bench"
RECEIVER = BENCH / "receiver.py"
PY = sys.executable
T0 = time.monotonic()


def log(text: str) -> None:
    """Print a line stamped with the seconds since the benchmark started."""
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
    """Stop a process this script started, by its pid only: ``sig``, then SIGKILL."""
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


def new_session(token: str | None = None) -> requests.Session:
    """A keep-alive HTTP client; no proxy, netrc or CA-bundle lookups from the environment on
    every call (``trust_env``), which would cost this client ~30% of its CPU per call."""
    session = requests.Session()
    session.trust_env = False
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def http_up(session: requests.Session, url: str, proc: subprocess.Popen | None, what: str) -> bool:
    """Whether ``url`` answers 200; raises if ``proc``, the process that should answer, exited."""
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what} exited with {proc.returncode}")
    try:
        return session.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
