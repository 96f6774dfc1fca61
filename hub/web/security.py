"""Who may see the admin page: the session login, its CSRF token and the session secret.

The browser never holds the admin token itself. After a login the signed session cookie keeps a
*fingerprint* of the token (an HMAC keyed with it), so a cookie read off a disk reveals nothing,
and changing ``HUB_ADMIN_TOKEN`` logs every browser out even when ``HUB_SECRET_KEY`` is set.
Without ``HUB_SECRET_KEY`` the session secret is derived from the token the same way, so every
gunicorn worker (and every hub process) signs with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from flask import current_app, session

_SECRET_LABEL = b"hub.web session secret v1"
_FINGERPRINT_LABEL = b"hub.web admin login v1"
LOGIN_KEY = "admin"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"


def _hmac(key: str, label: bytes) -> str:
    return hmac.new(key.encode(), label, hashlib.sha256).hexdigest()


def session_secret(config: Mapping[str, Any]) -> str | None:
    """Return the key that signs sessions: ``HUB_SECRET_KEY``, else one derived from the token."""
    if config.get("HUB_SECRET_KEY"):
        return str(config["HUB_SECRET_KEY"])
    token = config.get("HUB_ADMIN_TOKEN")
    return _hmac(token, _SECRET_LABEL) if token else None


def admin_token() -> str | None:
    """Return the configured admin token; None means the admin page is disabled."""
    return current_app.config.get("HUB_ADMIN_TOKEN") or None


def log_in() -> None:
    """Start a fresh session (new CSRF token, so a planted one is useless) for the admin."""
    token = admin_token()
    if token is None:
        raise RuntimeError("log_in() without HUB_ADMIN_TOKEN")
    session.clear()
    session[LOGIN_KEY] = _hmac(token, _FINGERPRINT_LABEL)
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def log_out() -> None:
    session.clear()


def logged_in() -> bool:
    """True when the session was opened with the token configured now."""
    token = admin_token()
    held = session.get(LOGIN_KEY)
    if not token or not isinstance(held, str):
        return False
    return hmac.compare_digest(held.encode(), _hmac(token, _FINGERPRINT_LABEL).encode())


def csrf_token() -> str:
    """Return this session's CSRF token, creating it (the login form needs one too)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok(submitted: str | None) -> bool:
    """True when a form carried this session's CSRF token."""
    expected = session.get(CSRF_KEY)
    if not isinstance(expected, str) or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())
