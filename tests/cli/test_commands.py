"""The command line: schema upgrades as a deploy step, and loading the registry file."""

from __future__ import annotations

import json

import sqlalchemy as sa

from hub import create_app
from tests.conftest import FAST


def test_db_upgrade_creates_the_schema_when_auto_migrate_is_off(database_url) -> None:
    app = create_app(
        {
            **FAST,
            "HUB_DATABASE_URL": database_url,
            "HUB_AUTO_MIGRATE": False,
            "HUB_DELIVERY": False,
            "HUB_LOAD_PLATFORMS": False,
        }
    )
    engine = sa.create_engine(database_url)
    assert "outbox_events" not in sa.inspect(engine).get_table_names()
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output
    tables = set(sa.inspect(engine).get_table_names())
    assert {"platforms", "users", "rooms", "messages", "outbox_events", "alembic_version"} <= tables
    again = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert again.exit_code == 0
    engine.dispose()
    app.extensions["hub"].close()


def test_load_platforms_upserts_the_file_by_name(runner, client, tmp_path) -> None:
    """An operator loads the file into a running hub's database; the hub serves the result."""
    registry = tmp_path / "platforms.json"
    registry.write_text(
        json.dumps(
            [
                {
                    "name": "GWT_CHAT",
                    "endpoint": "http://127.0.0.1:9/api/",
                    "token": "1",
                    "supportAudio": "True",
                },
                {"name": "NET_CHAT", "endpoint": "http://127.0.0.1:9/api/", "token": "2"},
            ]
        )
    )
    result = runner.invoke(args=["hub", "load-platforms", "--file", str(registry)])
    assert result.exit_code == 0, result.output
    assert "loaded 2 platform(s)" in result.output and "GWT_CHAT, NET_CHAT" in result.output
    registry.write_text(json.dumps([{"name": "gwt_chat", "endpoint": "http://h:1/", "token": "1"}]))
    assert runner.invoke(args=["hub", "load-platforms", "--file", str(registry)]).exit_code == 0
    listing = client.get("/admin/platforms", headers={"Authorization": "Bearer admin-secret"}).json
    assert [(p["name"], p["endpoint"]) for p in listing] == [
        ("gwt_chat", "http://h:1/"),
        ("NET_CHAT", "http://127.0.0.1:9/api/"),
    ]
    registry.write_text("[{]")
    broken = runner.invoke(args=["hub", "load-platforms", "--file", str(registry)])
    assert broken.exit_code != 0 and "not valid JSON" in broken.output
