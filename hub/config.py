"""The hub's settings: defaults, an optional config file, then ``HUB_*`` environment variables.

Every setting has a default that works on a developer machine (SQLite under ``instance/``,
``platforms.json`` at the project root). ``HUB_CONFIG_FILE`` names a Python file of upper-case
names (read with Flask's ``from_pyfile``), applied over the defaults; the environment (read with
``from_prefixed_env``) overrides both, and a test's mapping overrides everything. Each value is
checked by its setting's parser, so a wrong one stops the hub with a message that names it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Config, Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "HUB"
_MiB = 1024 * 1024

log = logging.getLogger(__name__)


def parse_bool(value: Any) -> bool:
    """Read a boolean from a JSON value or a string such as "True", "off", "1"."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


# name -> (default, parser). Parsers turn strings (environment) and file values into types.
SETTINGS: dict[str, tuple[Any, Any]] = {
    "HUB_DATABASE_URL": (None, str),  # None: a SQLite file under the instance folder
    "HUB_PLATFORMS_FILE": (str(PROJECT_ROOT / "platforms.json"), str),
    "HUB_ADMIN_TOKEN": (None, str),
    "HUB_RETRY_BASE_DELAY": (1.0, float),
    "HUB_RETRY_MAX_DELAY": (300.0, float),
    "HUB_DEAD_LETTER_AFTER": (604800.0, float),
    "HUB_SYNC_CRON": ("0 3 * * *", str),
    "HUB_MAX_BODY_BYTES": (1 * _MiB, int),
    "HUB_AUTO_MIGRATE": (True, parse_bool),
    "HUB_POLL_TIMEOUT": (25.0, float),
    "HUB_WS_PING_INTERVAL": (25.0, float),
    "HUB_WS_SEND_TIMEOUT": (30.0, float),  # a socket whose platform takes no frame this long is cut
    "HUB_DELIVERY": (True, parse_bool),  # a server process runs delivery workers too
    "HUB_DELIVERY_TIMEOUT": (10.0, float),  # seconds for one outbound HTTP call
    "HUB_DELIVERY_BATCH": (100, int),  # events read per claim of a platform's stream
    "HUB_DELIVERY_POLL_INTERVAL": (1.0, float),  # idle re-check of a stream's state
    "HUB_WAKE_INTERVAL": (2.0, float),  # the safety poll behind the wake-up, seconds
    "HUB_LEASE_SECONDS": (15.0, float),  # how long a process owns a platform's stream unrenewed
    "HUB_IDEMPOTENCY_TTL": (86400.0, float),  # how long Idempotency-Key answers are kept
    "HUB_HOUSEKEEPING_INTERVAL": (60.0, float),  # expire keys, dead-letter untaken pulled events
    "HUB_TOKEN_CACHE_SECONDS": (2.0, float),  # how long a token's platform is remembered
    "HUB_LOAD_PLATFORMS": (True, parse_bool),  # a server reads HUB_PLATFORMS_FILE at start
    "HUB_LOG_LEVEL": ("INFO", str),
    "HUB_SCHEDULER": (True, parse_bool),  # a server runs the nightly user sync's scheduler
    "HUB_SYNC_DELETE_VANISHED": (False, parse_bool),  # the sync deletes users a platform dropped
    "HUB_SECRET_KEY": (None, str),  # signs /admin page sessions; None: derived from the token
}


def _checked(name: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        return SETTINGS[name][1](value)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"invalid {name}={value!r} ({where}): {exc}") from exc


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fill ``app.config`` with the settings; return them (defaults, then the config file,
    then the environment, then ``overrides``)."""
    config = app.config
    config.from_mapping({name: default for name, (default, _) in SETTINGS.items()})
    config_file = os.environ.get("HUB_CONFIG_FILE")
    if config_file:
        try:
            config.from_pyfile(os.path.abspath(config_file))
        except (OSError, SyntaxError) as exc:
            raise SystemExit(f"cannot read HUB_CONFIG_FILE={config_file}: {exc}") from exc
        for name in SETTINGS:
            config[name] = _checked(name, config[name], config_file)
    # Environment strings are read as they are: a setting's parser gives them their type.
    environment = Config(app.root_path)
    environment.from_prefixed_env(PREFIX, loads=str)
    for key, value in environment.items():
        name = f"{PREFIX}_{key}"
        if name in SETTINGS:
            config[name] = _checked(name, value, "environment")
        elif name != "HUB_CONFIG_FILE" and not name.startswith("HUB_TEST_"):
            log.warning("unknown setting %s in the environment is ignored", name)
    if overrides:
        config.update(overrides)
    return {name: config[name] for name in SETTINGS} | dict(overrides or {})
