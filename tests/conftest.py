"""Fixtures: a hub on a real database (SQLite file, and PostgreSQL when given), real platforms.

Every test that takes ``database_url`` (directly or through ``hub``) runs once on SQLite and
once on PostgreSQL. PostgreSQL comes from ``HUB_TEST_POSTGRES_URL``; under CI it defaults to the
machine's server, elsewhere its runs are skipped when no URL is given. Each PostgreSQL test gets
a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub import create_app
from tests.support.loopback_platform import LoopbackPlatform, wait_for

CI_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str | None:
    url = os.environ.get("HUB_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI"):
        url = CI_POSTGRES_URL
    return url or None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite3'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip("no PostgreSQL: set HUB_TEST_POSTGRES_URL (CI sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# Fast retries, so tests of outages and replays wait for conditions, not for the defaults.
FAST = {
    "HUB_RETRY_BASE_DELAY": 0.05,
    "HUB_RETRY_MAX_DELAY": 0.3,
    "HUB_DELIVERY_POLL_INTERVAL": 0.1,
    "HUB_DELIVERY_TIMEOUT": 3.0,
    "HUB_LEASE_SECONDS": 5.0,
    "HUB_ADMIN_TOKEN": "admin-secret",
    # A nightly sync firing in the middle of a test would add events it does not expect; the
    # scheduler's own tests turn it on.
    "HUB_SCHEDULER": False,
}


@pytest.fixture
def platforms() -> Iterator[Callable[..., LoopbackPlatform]]:
    """Factory of real loopback platforms (started), stopped at the end of the test."""
    started: list[LoopbackPlatform] = []

    def make(
        name: str, token: str | None = None, users: list[dict] | None = None
    ) -> LoopbackPlatform:
        platform = LoopbackPlatform(name, token or f"token-{name}", users=users)
        platform.start()
        started.append(platform)
        return platform

    yield make
    for platform in started:
        platform.stop()


class HubClient:
    """A hub app plus helpers to call it as a platform or as the admin."""

    def __init__(self, app: Any, settings: dict[str, Any] | None = None) -> None:
        self.app = app
        self.client = app.test_client()
        self.settings = settings or {}
        self._command_app: Any = None

    @property
    def runner(self) -> Any:
        """A CLI runner as an operator's shell is: an app of its own (``--app hub``: no server
        thread) on this hub's database, beside this serving one."""
        if self._command_app is None:
            self._command_app = create_app({**self.settings, "HUB_LOAD_PLATFORMS": False})
        return self._command_app.test_cli_runner()

    def command(self, *args: str, input: str | None = None) -> Any:
        """Run ``flask hub <args>`` with ``runner``."""
        return self.runner.invoke(args=["hub", *args], input=input)

    def close(self) -> None:
        if self._command_app is not None:
            self._command_app.extensions["hub"].close()
        self.hub.close()

    def as_platform(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def post(self, platform: LoopbackPlatform, path: str, body: Any, **kwargs: Any) -> Any:
        return self.as_platform(platform.token, "POST", path, json=body, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.as_platform(FAST["HUB_ADMIN_TOKEN"], method, path, **kwargs)

    @property
    def hub(self) -> Any:
        return self.app.extensions["hub"]

    def before_marker(self, platform: LoopbackPlatform, via: LoopbackPlatform | str) -> list[Any]:
        """What reached ``platform`` before a marker queued for it now: a new user of ``via`` (a
        platform, or its token), which every other platform is sent. A platform's stream is
        delivered in order, so once the marker has arrived, anything queued for it before has
        arrived too: an empty answer means nothing was sent, not that it was on its way."""
        marker = f"marker-{uuid.uuid4().hex[:8]}"
        token = via if isinstance(via, str) else via.token
        body = {"id": marker, "name": marker}
        assert self.as_platform(token, "POST", "/user", json=body).status_code == 201

        def arrived() -> int | None:
            calls = enumerate(platform.calls)
            return next((i for i, c in calls if (c.json or {}).get("id") == marker), None)

        wait_for(lambda: arrived() is not None, message=f"the marker at {platform.name}")
        return platform.calls[: arrived()]


@pytest.fixture
def make_hub(database_url: str, tmp_path: Path) -> Iterator[Callable[..., HubClient]]:
    """Factory: a hub on the test database whose platforms.json lists the given platforms."""
    made: list[HubClient] = []

    def make(
        *registered: LoopbackPlatform, entries: list[dict] | None = None, **config: Any
    ) -> HubClient:
        registry = tmp_path / f"platforms-{len(made)}.json"
        registry.write_text(json.dumps(entries or [p.registry_entry() for p in registered]))
        settings = {
            **FAST,
            "HUB_DATABASE_URL": database_url,
            "HUB_PLATFORMS_FILE": str(registry),
            **config,
        }
        hub = HubClient(create_app(settings), settings)
        hub.hub.serve()  # what wsgi.py does for a server
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


@pytest.fixture
def hub_client(make_hub: Callable[..., HubClient]) -> HubClient:
    """A serving hub on the test database with no platform registered."""
    return make_hub(entries=[])


@pytest.fixture
def app(hub_client: HubClient) -> Any:
    """The Flask app of ``hub_client``."""
    return hub_client.app


@pytest.fixture
def client(hub_client: HubClient) -> Any:
    """A test client of ``app``."""
    return hub_client.client


@pytest.fixture
def runner(hub_client: HubClient) -> Any:
    """A CLI runner on ``app``'s database, as ``flask --app hub`` runs commands."""
    return hub_client.runner


class Trio:
    """Three platforms A, B, C on one hub; one user each; room A:10 holds all three users."""

    def __init__(
        self, hub: HubClient, a: LoopbackPlatform, b: LoopbackPlatform, c: LoopbackPlatform
    ) -> None:
        self.hub, self.a, self.b, self.c = hub, a, b, c

    def send(
        self,
        sender: LoopbackPlatform,
        text: str,
        sender_id: int | str = 1,
        room: tuple[str, int | str] = ("A", 10),
        headers: dict | None = None,
        **extra: Any,
    ) -> Any:
        body = {
            "roomOriginalPlatform": room[0],
            "roomId": room[1],
            "senderId": sender_id,
            "text": text,
            **extra,
        }
        return self.hub.post(sender, "/message", body, headers=headers or {})


@pytest.fixture
def trio(platforms: Callable[..., LoopbackPlatform], make_hub: Callable[..., HubClient]) -> Trio:
    a, b, c = platforms("A"), platforms("B"), platforms("C")
    hub = make_hub(a, b, c)
    for platform, name in ((a, "alice"), (b, "bob"), (c, "carol")):
        assert hub.post(platform, "/user", {"id": 1, "name": name}).status_code == 201
    room = {
        "id": 10,
        "name": "lobby",
        "type": "private",
        "users": [{"A": [1]}, {"B": [1]}, {"C": [1]}],
    }
    assert hub.post(a, "/room", room).status_code == 201
    # Each platform sees the two other users and (B, C) the room before a test starts.
    for platform in (a, b, c):
        wait_for(lambda p=platform: len(p.acked("user")) == 2, message=f"{platform.name} users")
    for platform in (b, c):
        wait_for(lambda p=platform: len(p.acked("room")) == 1, message=f"{platform.name} room")
    for platform in (a, b, c):
        platform.reset()
    return Trio(hub, a, b, c)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Serve an app with a real threaded server on loopback (WebSockets need one); give its URL."""
    from werkzeug.serving import make_server

    servers = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
