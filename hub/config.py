"""Defaults and ``HUB_*`` environment overrides: the hub's policy as data.

Every setting has a default that works on a developer machine (SQLite under ``instance/``,
``platforms.json`` at the project root). An optional config file named by ``HUB_CONFIG_FILE``
(Python syntax, upper-case names) is applied between the defaults and the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name -> (default, parser). Parsers turn the environment's strings into typed values.
_MiB = 1024 * 1024


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
    # Not in the contract's table, all documented in the README:
    "HUB_DELIVERY": (True, parse_bool),  # run delivery workers in this process
    "HUB_DELIVERY_TIMEOUT": (10.0, float),  # seconds for one outbound HTTP call
    "HUB_DELIVERY_BATCH": (100, int),  # events read per claim of a platform's stream
    "HUB_DELIVERY_POLL_INTERVAL": (1.0, float),  # idle re-check of a stream's state
    "HUB_WAKE_INTERVAL": (0.01, float),  # how often events of other processes are looked for
    "HUB_LEASE_SECONDS": (15.0, float),  # how long a process owns a platform's stream unrenewed
    "HUB_IDEMPOTENCY_TTL": (86400.0, float),  # how long Idempotency-Key answers are kept
    "HUB_HOUSEKEEPING_INTERVAL": (60.0, float),  # expire keys, dead-letter untaken pulled events
    "HUB_TOKEN_CACHE_SECONDS": (2.0, float),  # how long a token's platform is remembered
    "HUB_LOAD_PLATFORMS": (True, parse_bool),  # read HUB_PLATFORMS_FILE at start
    "HUB_LOG_LEVEL": ("INFO", str),
    "HUB_SCHEDULER": (True, parse_bool),  # run the nightly user sync's scheduler in this process
    "HUB_SYNC_DELETE_VANISHED": (False, parse_bool),  # the sync deletes users a platform dropped
    "HUB_SECRET_KEY": (None, str),  # signs /admin page sessions; None: derived from the token
}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then the config file, then the environment, then overrides."""
    config: dict[str, Any] = {name: default for name, (default, _) in SETTINGS.items()}
    config_file = os.environ.get("HUB_CONFIG_FILE")
    if config_file:
        namespace: dict[str, Any] = {}
        exec(compile(Path(config_file).read_text(), config_file, "exec"), namespace)
        config.update({k: v for k, v in namespace.items() if k.isupper()})
    for name, (_, parser) in SETTINGS.items():
        if name in os.environ:
            try:
                config[name] = parser(os.environ[name])
            except ValueError as exc:
                raise SystemExit(f"invalid {name}={os.environ[name]!r}: {exc}") from exc
    if overrides:
        config.update(overrides)
    return config
