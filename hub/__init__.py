"""The chat-integrator hub: ``create_app()`` builds the Flask application and its services.

It starts nothing: a server process starts its threads with ``Hub.serve()`` (``wsgi.py``
does), the ``deliver`` command with ``Hub.deliver()`` (see ``hub/services.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from hub.config import PROJECT_ROOT, load_config
from hub.db import Database
from hub.db.sqlite import default_sqlite_url


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("hub", "adapters"):
        logging.getLogger(name).setLevel(level.upper())


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the hub: configuration, database (migrated), API, admin page, commands."""
    from hub import cli
    from hub.api import register_api
    from hub.db import migrate
    from hub.services import Hub

    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    config = load_config(app, test_config)
    _configure_logging(config["HUB_LOG_LEVEL"])
    url = config["HUB_DATABASE_URL"] or default_sqlite_url(app.instance_path)
    config["HUB_DATABASE_URL"] = app.config["HUB_DATABASE_URL"] = url
    app.config["MAX_CONTENT_LENGTH"] = config["HUB_MAX_BODY_BYTES"]

    db = Database(url)
    if config["HUB_AUTO_MIGRATE"]:
        migrate.upgrade(db)
    app.extensions["hub"] = Hub(config, db)
    register_api(app)
    cli.register(app)
    return app
