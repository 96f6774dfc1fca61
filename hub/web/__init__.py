"""The ``/admin`` web page: platforms, queues, dead letters, replay and recent traffic.

A server-rendered page for people, next to the JSON admin API under ``/admin/*`` for scripts.
The page lives at ``/admin``; its forms post to ``/admin/ui/...`` and its own CSS and script are
served from ``/admin/ui/static/`` (nothing from elsewhere, so the CSP can allow only 'self').
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.wrappers import Response

from hub.web.security import session_secret
from hub.web.views import bp

SESSION_LIFETIME = timedelta(hours=12)
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus building the signer for a request that carries no
    session cookie: every platform API call (the signer was ~3% of a ``POST /message``)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask's open_session gives for no cookie
        return super().open_session(app, request)


@bp.after_request
def _security_headers(response: Response) -> Response:
    """Forbid framing and foreign content; never let a cache keep an admin page."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "web.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Sign sessions, scope their cookie to ``/admin`` and register the page."""
    secret = session_secret(app.config)
    if secret is not None:
        app.secret_key = secret
    app.session_interface = AdminSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="hub_admin_session",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,  # also the oldest cookie Flask accepts
    )
    app.register_blueprint(bp)
