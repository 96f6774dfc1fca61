"""Who is calling: a platform by its token (bearer, body ``token`` or ``?token=``), or the admin."""

from __future__ import annotations

import hmac
import threading
import time

from flask import current_app, request
from sqlalchemy import select

from hub.errors import Forbidden, Unauthorized
from hub.models import Platform


def token_from_request() -> str | None:
    """Return the token the request carries, in the contract's order of preference."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method in {"POST", "PUT", "PATCH"}:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("token"), str) and body["token"]:
            return body["token"]
    return request.args.get("token") or None


class TokenCache:
    """Platforms by token, remembered for a short while: every call authenticates, and reading
    the registry each time was a tenth of what ``POST /message`` cost. Changes made through
    this process forget the cache at once; changes made by another process (the CLI, another
    worker) are seen within ``HUB_TOKEN_CACHE_SECONDS``. Unknown tokens are never cached."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Platform]] = {}

    def get(self, token: str) -> Platform | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, platform: Platform) -> None:
        if self.seconds > 0:
            with self._lock:
                self._entries[token] = (time.monotonic() + self.seconds, platform)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _token_cache() -> TokenCache:
    cache = current_app.extensions.get("hub.tokens")
    if cache is None:
        seconds = current_app.config["HUB_TOKEN_CACHE_SECONDS"]
        cache = current_app.extensions.setdefault("hub.tokens", TokenCache(seconds))
    return cache


def forget_tokens() -> None:
    """Drop the remembered tokens (after the registry changed)."""
    _token_cache().clear()


def platform_for_token(token: str) -> Platform | None:
    """Return the platform a token belongs to (detached from any session), or None."""
    if "\x00" in token:  # never a real token, and PostgreSQL refuses it in a query
        return None
    cache = _token_cache()
    platform = cache.get(token)
    if platform is not None:
        return platform
    hub = current_app.extensions["hub"]
    with hub.db.read() as session:
        platform = session.execute(
            select(Platform).where(Platform.token == token)
        ).scalar_one_or_none()
    if platform is not None:
        cache.put(token, platform)
    return platform


def authenticate_platform() -> Platform:
    """Return the calling platform; 401 without a known token, 403 if it is disabled."""
    token = token_from_request()
    if token is None:
        raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
    platform = platform_for_token(token)
    if platform is None:
        raise Unauthorized("unknown token")
    if not platform.enabled:
        raise Forbidden(f"platform {platform.name} is disabled")
    return platform


def is_admin_token(given: str | None) -> bool:
    """Whether ``given`` is ``HUB_ADMIN_TOKEN`` (compared in constant time); never when no
    admin token is set. The one admin-token check: API, notifications and the admin page."""
    expected = current_app.config.get("HUB_ADMIN_TOKEN")
    return bool(expected and given) and hmac.compare_digest(given.encode(), expected.encode())


def authenticate_admin() -> None:
    """Admit only ``Authorization: Bearer <HUB_ADMIN_TOKEN>``; without one set, refuse all."""
    if not current_app.config.get("HUB_ADMIN_TOKEN"):
        raise Forbidden("admin endpoints are disabled: set HUB_ADMIN_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not is_admin_token(value.strip()):
        raise Unauthorized("admin token required: send 'Authorization: Bearer <admin token>'")
