"""Run the hub as a real separate process (``flask run`` or gunicorn) for crash and start tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.loopback_platform import wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HubProcess:
    """A hub process on a loopback port, started with the README's commands."""

    def __init__(
        self, env: dict[str, str], server: str = "flask", log_path: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.server = server
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return [
                sys.executable,
                "-m",
                "gunicorn",
                "wsgi:app",
                "-b",
                f"127.0.0.1:{self.port}",
                "-k",
                "gthread",
                "--threads",
                "8",
                "--no-control-socket",
            ]
        return [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "run",
            "--port",
            str(self.port),
            "--no-reload",
            "--no-debugger",
        ]

    def start(self) -> HubProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(self._ready, timeout=30, message=f"hub did not start: see {self.log_path}")
        except BaseException:
            self.stop()  # never leave a half-started hub behind a failed test
            raise
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"hub exited with {self.process.returncode}; log {self.log_path}")
        try:
            return requests.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:  # not listening yet, or still loading the app
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def post(self, token: str, path: str, body: dict) -> requests.Response:
        return requests.post(
            f"{self.url}{path}", json=body, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
