"""``flask hub demo``: a hub and sample platforms as real processes; a message crosses; Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.support.loopback_platform import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXT = "hello from the demo test"
SAMPLE = re.compile(r"^\s+(\w+)\s+(http://127\.0\.0\.1:\d+)/\s+\(token (\S+)\)", re.M)


def _down(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return True
    return False


def test_demo_runs_a_hub_with_samples_until_ctrl_c(tmp_path: Path) -> None:
    # The command's own app (not the demo's hub) gets a database of its own too.
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    command = [sys.executable, "-m", "flask", "--app", "hub", "hub", "demo", "--platforms", "2"]
    demo = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()

    def output() -> str:
        return "".join(lines)

    try:
        wait_for(lambda: "demo running" in output(), timeout=60, message="the demo to start")
        hub = re.search(r"hub\s+(http://127\.0\.0\.1:\d+)/", output()).group(1)
        samples = {name: (url, token) for name, url, token in SAMPLE.findall(output())}
        assert set(samples) == {"GWT_CHAT", "NET_CHAT"}
        gwt = {"Authorization": f"Bearer {samples['GWT_CHAT'][1]}"}
        wait_for(
            lambda: len(requests.get(f"{hub}/users", headers=gwt, timeout=5).json()) == 4,
            timeout=20,
            message="both samples' users at the hub",
        )
        room = {
            "id": 1,
            "name": "lobby",
            "type": "private",
            "users": [{"GWT_CHAT": [1]}, {"NET_CHAT": [1]}],
        }
        assert requests.post(f"{hub}/room", json=room, headers=gwt, timeout=5).status_code == 201
        message = {"roomOriginalPlatform": "GWT_CHAT", "roomId": 1, "senderId": 1, "text": TEXT}
        answer = requests.post(f"{hub}/message", json=message, headers=gwt, timeout=5)
        assert answer.status_code == 202
        wait_for(
            lambda: f"[NET_CHAT] message in GWT_CHAT:1 from GWT_CHAT:1 (Alice): {TEXT}" in output(),
            timeout=20,
            message="the message on NET_CHAT",
        )
        page = requests.get(samples["NET_CHAT"][0] + "/", timeout=5).text
        assert TEXT in page

        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("the demo did not stop within 30 s of Ctrl-C:\n" + output())
        assert code == 0, output()
        reader.join(10)
        assert "demo stopped" in output()
        assert all(_down(url) for url in [hub, *(url for url, _ in samples.values())])
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
