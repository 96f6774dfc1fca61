"""Operating the hub: health, readiness, metrics, OpenAPI and its self-served docs page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Trio
from tests.support.loopback_platform import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_health_and_readiness(trio: Trio) -> None:
    assert trio.hub.client.get("/healthz").json == {"status": 200, "message": "ok"}
    assert trio.hub.client.get("/readyz").json == {"status": 200, "message": "ready"}


def test_readiness_fails_when_the_database_is_gone(platforms, make_hub, tmp_path) -> None:
    hub = make_hub(platforms("A"))
    hub.hub.db.dispose()
    broken = "sqlite:////nonexistent-dir/hub.sqlite3"
    from hub.db import Database

    hub.app.extensions["hub"].db = Database(broken)
    answer = hub.client.get("/readyz")
    assert answer.status_code == 503 and answer.json["status"] == 503


def metric(text: str, name: str, platform: str) -> float:
    match = re.search(rf'^{name}{{platform="{platform}"}} (\S+)$', text, re.M)
    assert match, f"{name} for {platform} missing"
    return float(match.group(1))


def test_metrics_show_queue_depth_age_outcomes_and_dead_letters(trio: Trio) -> None:
    trio.c.stop()
    trio.b.respond_with(400, when=lambda body: body.get("text") == "bad", times=1)
    trio.send(trio.a, "bad")
    trio.send(trio.a, "good")
    wait_for(lambda: len(trio.b.acked("message")) == 1)
    wait_for(
        lambda: (
            'hub_deliveries_total{outcome="failed",platform="C"}'
            in trio.hub.client.get("/metrics").text
        )
    )
    text = trio.hub.client.get("/metrics").text
    assert metric(text, "hub_queue_depth", "C") == 2
    assert metric(text, "hub_queue_depth", "B") == 0
    assert metric(text, "hub_oldest_pending_age_seconds", "C") > 0
    assert metric(text, "hub_dead_letters", "B") == 1
    assert metric(text, "hub_platform_up", "C") == 0
    assert 'hub_deliveries_total{outcome="delivered",platform="B"}' in text
    assert 'hub_deliveries_total{outcome="dead_letter",platform="B"} 1.0' in text


def test_openapi_describes_every_endpoint(trio: Trio) -> None:
    spec = trio.hub.client.get("/openapi.json").json
    paths = set(spec["paths"])
    assert {
        "/platforms",
        "/users",
        "/user",
        "/room",
        "/message",
        "/ping",
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/platforms",
        "/admin/platforms/{name}",
        "/admin/deadletters",
        "/admin/deadletters/{event_id}/retry",
    } <= paths


def test_docs_page_loads_its_assets_from_the_hub(trio: Trio) -> None:
    page = trio.hub.client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert assets and all(a.startswith("/swagger-ui/") for a in assets), assets
    for asset in assets:
        assert trio.hub.client.get(asset).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("token", ["token-A", "admin-secret"])
def test_schemathesis_finds_no_server_error(platforms, database_url, tmp_path, token) -> None:
    import json

    from tests.support.hub_process import HubProcess

    a, b = platforms("A"), platforms("B")
    registry = tmp_path / "platforms.json"
    registry.write_text(json.dumps([a.registry_entry(), b.registry_entry()]))
    hub = HubProcess(
        {
            "HUB_DATABASE_URL": database_url,
            "HUB_PLATFORMS_FILE": str(registry),
            "HUB_ADMIN_TOKEN": "admin-secret",
        },
        log_path=tmp_path / "hub.log",
    ).start()
    try:
        hub.post(a.token, "/user", {"id": 1, "name": "alice"})
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{hub.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "-H",
                f"Authorization: Bearer {token}",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--request-timeout",
                "10",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        hub.stop()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "unexpected error" not in (tmp_path / "hub.log").read_text()
