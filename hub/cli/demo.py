"""The ``demo`` command: a hub and two or three sample platforms, started and stopped together.

Everything runs as child processes on a temporary database and registry, so a demo never
touches the operator's own data. The samples' lines (a message arriving, a user joining) go to
this terminal; the hub's log and the samples' server noise go to files in the demo's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from hub.config import PROJECT_ROOT

SAMPLES = [  # name, token, supportAudio, supportImage
    ("GWT_CHAT", "demo-1111", True, True),
    ("NET_CHAT", "demo-2222", False, True),
    ("FLASK_CHAT", "demo-3333", False, False),
]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0  # seconds the samples and the hub get to stop before they are killed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    import requests  # here: every hub process loads the CLI, few run the demo

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class Demo:
    """The demo's processes and files."""

    def __init__(self, folder: Path, hub_port: int, ports: list[int], admin_token: str) -> None:
        self.folder = folder
        self.hub_url = f"http://127.0.0.1:{hub_port}"
        self.hub_port = hub_port
        self.samples = [(*SAMPLES[i], port) for i, port in enumerate(ports)]
        self.admin_token = admin_token
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs: list[IO[bytes]] = []

    def _spawn(self, name: str, command: list[str], log: str, **kwargs: Any) -> None:
        handle = open(self.folder / log, "ab")  # noqa: SIM115 - closed in stop()
        self.logs.append(handle)
        kwargs.setdefault("stdout", handle)
        # A session of its own: Ctrl-C reaches only the demo, which stops the children in order.
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stderr=handle, start_new_session=True, **kwargs
        )
        self.processes.append((name, process))

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            for who, process in self.processes:
                if process.poll() is not None:
                    raise click.ClickException(f"{who} exited; see its log in {self.folder}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"{name} did not start; see its log in {self.folder}")
            time.sleep(0.1)

    def start(self) -> None:
        registry = self.folder / "platforms.json"
        entries = [
            {"name": name, "endpoint": f"http://127.0.0.1:{port}/api/", "token": token}
            | {"supportAudio": audio, "supportImage": image}
            for name, token, audio, image, port in self.samples
        ]
        registry.write_text(json.dumps(entries, indent=1))
        # Not this command's settings, and not FLASK_RUN_FROM_CLI, which stops a sample's app.run().
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "FLASK_"))}
        env = clean | {
            "HUB_DATABASE_URL": f"sqlite:///{self.folder / 'hub.sqlite3'}",
            "HUB_PLATFORMS_FILE": str(registry),
            "HUB_ADMIN_TOKEN": self.admin_token,
        }
        flask_run = ["-m", "flask", "--app", "wsgi", "run", "--no-reload", "--no-debugger"]
        port = ["--host", "127.0.0.1", "--port", str(self.hub_port)]
        self._spawn("the hub", [sys.executable, *flask_run, *port], "hub.log", env=env)
        self._wait("the hub", lambda: _answers(f"{self.hub_url}/readyz"))
        script = str(PROJECT_ROOT / "examples" / "sample_platform.py")
        for name, token, _, _, port_ in self.samples:
            args = ["--name", name, "--port", str(port_), "--token", token, "--hub", self.hub_url]
            # Their stdout is the demo's: "[NET_CHAT] message in ..." shows here.
            self._spawn(
                name, [sys.executable, script, *args], f"{name}.log", stdout=None, env=clean
            )
        for name, *_, port_ in self.samples:
            self._wait(name, lambda p=port_: _answers(f"http://127.0.0.1:{p}/api/users"))

    def describe(self) -> str:
        lines = [
            "demo running; Ctrl-C stops everything",
            f"  hub         {self.hub_url}/  (API docs at /docs)",
            f"  admin page  {self.hub_url}/admin  (admin token {self.admin_token})",
        ]
        lines += [
            f"  {name:<11} http://127.0.0.1:{port}/  (token {token})"
            for name, token, _, _, port in self.samples
        ]
        lines += [
            f"  files       {self.folder} (platforms.json, database, logs)",
            "Open the platform pages side by side, create a room on one with users of the others,",
            "send a message, and watch it arrive on the others.",
        ]
        return "\n".join(lines)

    def watch(self) -> None:
        """Return when a child process exits on its own (an error); Ctrl-C interrupts."""
        while True:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise click.ClickException(
                        f"{name} exited with {process.returncode}; see {self.folder}"
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the samples and the hub; kill what has not stopped ten seconds later."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        # One deadline for all of them, so a slow one does not hold up the kill of the others.
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, process in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        for name, process in self.processes:
            if process.poll() is None:
                click.echo(f"{name} did not stop within {STOP_TIMEOUT:.0f}s: killed", err=True)
                process.kill()
                process.wait()
        for handle in self.logs:
            handle.close()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.command("demo")
@click.option("--platforms", "count", type=click.IntRange(2, 3), default=3, show_default=True)
@click.option("--port", type=int, default=0, help="The hub's port (default: a free one).")
@click.option(
    "--platform-port",
    "platform_ports",
    type=int,
    multiple=True,
    help="A sample platform's port, once per platform (default: free ones).",
)
@click.option("--admin-token", default="demo-admin", show_default=True)
@click.option("--keep", is_flag=True, help="Keep the demo's folder (database, logs) at the end.")
def demo(
    count: int, port: int, platform_ports: tuple[int, ...], admin_token: str, keep: bool
) -> None:
    """Start the hub with sample platforms (examples/sample_platform.py) to try it out.

    The hub runs on a temporary database and a temporary platforms.json listing the samples
    (GWT_CHAT, NET_CHAT and, with --platforms 3, FLASK_CHAT); each sample has a page to create
    rooms and send messages. Ctrl-C stops everything.
    """
    if platform_ports and len(platform_ports) != count:
        raise click.UsageError(f"give --platform-port {count} times, or not at all")
    ports = list(platform_ports) or [free_port() for _ in range(count)]
    folder = Path(tempfile.mkdtemp(prefix="hub-demo-"))
    running = Demo(folder, port or free_port(), ports, admin_token)
    signal.signal(signal.SIGTERM, _interrupt)
    # Python ignores SIGINT for good when it starts with SIGINT ignored (a command started in
    # the background by a shell without job control, as CI runners may): Ctrl-C and kill -INT
    # must stop the demo all the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        running.start()
        click.echo(running.describe())
        running.watch()
    except KeyboardInterrupt:
        click.echo("\nstopping the demo")
    finally:
        running.stop()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    click.echo("demo stopped")


COMMANDS = [demo]
