"""Who is calling: a platform by its token (bearer, body ``token`` or ``?token=``), or the admin."""

from __future__ import annotations

import hmac

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


def platform_for_token(token: str) -> Platform | None:
    if "\x00" in token:  # never a real token, and PostgreSQL refuses it in a query
        return None
    hub = current_app.extensions["hub"]
    with hub.db.read() as session:
        return session.execute(select(Platform).where(Platform.token == token)).scalar_one_or_none()


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


def authenticate_admin() -> None:
    """Admit only ``Authorization: Bearer <HUB_ADMIN_TOKEN>``; without one set, refuse all."""
    expected = current_app.config.get("HUB_ADMIN_TOKEN")
    if not expected:
        raise Forbidden("admin endpoints are disabled: set HUB_ADMIN_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), expected.encode()
    ):
        raise Unauthorized("admin token required: send 'Authorization: Bearer <admin token>'")
