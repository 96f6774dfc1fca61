"""The processes a benchmark starts: receiving platforms (``bench/receiver.py``) and the hub."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from common.samplers import cpu_seconds
from common.util import PY, RECEIVER, free_port, http_up, new_session, stop_process, wait_until


class Receiver:
    """One receiver process (restartable on the same port) and what it has received so far."""

    def __init__(self, name: str, token: str, workdir: Path) -> None:
        self.name = name
        self.token = token
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

    def entry(self, platform_id: int) -> dict[str, Any]:
        """This receiver as a REST platform of the hub's platforms.json."""
        return {
            "id": platform_id,
            "name": self.name,
            "endpoint": self.endpoint,
            "supportAudio": "True",
            "supportImage": "True",
            "token": self.token,
        }

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
        wait_until(
            lambda: http_up(self.http, f"{self.url}/stats", self.proc, f"receiver {self.name}"),
            15,
            f"receiver {self.name} on port {self.port}",
        )

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
        """The messages received over the run whose text starts with ``prefix``."""
        self.collect()
        return [m for m in self.received if isinstance(m[1], str) and m[1].startswith(prefix)]


class Hub:
    """One hub on its own SQLite database and platforms.json, in ``directory``: gunicorn
    (gthread) from ``root``, and with ``delivery_process`` the web server at HUB_DELIVERY=off
    and ``flask hub deliver`` beside it."""

    def __init__(
        self,
        directory: Path,
        entries: list[dict[str, Any]],
        *,
        admin_token: str,
        root: Path,
        hub_env: list[str],
        threads: int,
        workers: int = 1,
        worker_connections: int = 0,
        app: str = "wsgi:app",
        delivery_process: bool = False,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.db_path = directory / "hub.sqlite3"
        self.db_url = f"sqlite:///{self.db_path}"
        (directory / "platforms.json").write_text(json.dumps(entries, indent=1))
        self.admin_token = admin_token
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": self.db_url,
            "HUB_PLATFORMS_FILE": str(directory / "platforms.json"),
            "HUB_ADMIN_TOKEN": admin_token,
            "HUB_LOG_LEVEL": "WARNING",
        }
        self.hub_env = hub_env
        self.root = root
        self.app = app
        self.gunicorn_threads = threads
        self.workers = workers
        self.worker_connections = worker_connections
        self.delivery_process = delivery_process
        self.log_path = directory / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.deliverer: subprocess.Popen | None = None
        self.http = new_session()
        self.start_seconds = 0.0

    def command(self) -> list[str]:
        command = [
            PY,
            "-m",
            "gunicorn",
            self.app,
            "-k",
            "gthread",
            "--threads",
            str(self.gunicorn_threads),
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
        ]
        if self.worker_connections:
            command += ["--worker-connections", str(self.worker_connections)]
        return command

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Start gunicorn, wait for ``/readyz``, then start the delivery process if any."""
        env = {**self.env, **(extra_env or {})}
        for item in self.hub_env:
            name, _, value = item.partition("=")
            env[name] = value
        if self.delivery_process:
            env["HUB_DELIVERY"] = "off"  # the web server only takes messages in
        out = open(self.log_path, "ab")  # noqa: SIM115
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, 120, "the hub's /readyz")
        if self.delivery_process:  # after the web server has migrated and loaded the registry
            self.deliverer = subprocess.Popen(
                [PY, "-m", "flask", "--app", self._command_app(), "hub", "deliver"],
                cwd=self.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.start_seconds = time.monotonic() - started

    def _command_app(self) -> str:
        """The app the hub's commands load: ``hub`` (no server threads); a tree older than
        ``hub/services.py`` took the server's module (benchmarks compare trees)."""
        if (self.root / "hub" / "services.py").exists():
            return "hub"
        return self.app.partition(":")[0]

    def _ready(self) -> bool:
        try:
            return http_up(self.http, f"{self.url}/readyz", self.proc, "the hub")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None

    def pids(self) -> list[int]:
        """The hub's root processes: gunicorn's master, and the delivery process if any."""
        return [p.pid for p in (self.proc, self.deliverer) if p is not None]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, wait: float = 30) -> None:
        """SIGTERM to each root; if a tree is not gone after ``wait`` s, SIGKILL its pids."""
        children = self.processes()[1:]
        stop_process(self.deliverer, wait=wait)
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
        """Every process of the hub: the roots and their children."""
        found: list[psutil.Process] = []
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(pid)
                found += [root, *root.children(recursive=True)]
        return found

    def _sum(self, read: Callable[[psutil.Process], float]) -> Any:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += read(proc)
        return total

    def rss(self) -> int:
        """RSS of the whole tree, bytes."""
        return self._sum(lambda p: p.memory_info().rss)

    def threads(self) -> int:
        """Threads of the whole tree."""
        return self._sum(lambda p: p.num_threads())

    def fds(self) -> int:
        return self._sum(lambda p: p.num_fds())

    def cpu_seconds(self) -> float:
        return float(self._sum(cpu_seconds))

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

    def post(self, token: str, path: str, body: Any) -> requests.Response:
        """POST with a platform's token; raises unless it answers 200 or 201."""
        answer = self.call(token, "POST", path, body)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text}")
        return answer

    def platforms(self, timeout: float = 60) -> dict[str, dict[str, Any]]:
        """GET /admin/platforms, by platform name."""
        answer = self.call(self.admin_token, "GET", "/admin/platforms", timeout=timeout)
        answer.raise_for_status()
        return {p["name"]: p for p in answer.json()}
