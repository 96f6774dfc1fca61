"""The admin page's routes: the page at ``/admin``, its forms posting to ``/admin/ui/...``.

Every POST carries the session's CSRF token and answers with a redirect back to the page
(post/redirect/get), with a flash message saying what happened.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from hub.api.auth import is_admin_token
from hub.errors import ApiError
from hub.outbox.outcomes import requeue_dead
from hub.outbox.replay import replay_stream
from hub.web import dashboard, security
from hub.web.forms import ReplayRequest, parse_replay

log = logging.getLogger(__name__)

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)


def _db():  # type: ignore[no-untyped-def]
    return current_app.extensions["hub"].db


def back(anchor: str | None = None) -> Response:
    """Answer a POST with "see the page again" (303), so a reload never posts twice."""
    return redirect(url_for("web.index", _anchor=anchor), code=303)


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": security.csrf_token, "csrf_field": security.CSRF_FIELD}


@bp.before_request
def _guard_posts() -> Response | None:
    """Refuse a POST without this session's CSRF token (400), before anything is done."""
    if request.method != "POST":
        return None
    if security.admin_token() is None:
        abort(403, "The admin page is disabled: set HUB_ADMIN_TOKEN.")
    if not security.csrf_ok(request.form.get(security.CSRF_FIELD)):
        abort(400, "The form's CSRF token is missing or does not match this session.")
    if request.endpoint != "web.login" and not security.logged_in():
        flash("Please log in again.", "error")
        return back()
    return None


@bp.errorhandler(HTTPException)
def _error_page(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    return render_template("web/error.html", error=error, status=status), status


@bp.get("")
def index() -> str:
    """Show the dashboard, or the login form (or why admin is disabled)."""
    if security.admin_token() is None:
        return render_template("web/login.html", disabled=True)
    if not security.logged_in():
        return render_template("web/login.html", disabled=False)
    with _db().read() as session:
        board = dashboard.load(session, security.admin_token())
        names = dashboard.platform_names(session)
    return render_template("web/dashboard.html", board=board, names=names)


@bp.post("/ui/login")
def login() -> Response:
    """Open an admin session when the submitted token is ``HUB_ADMIN_TOKEN``."""
    if not is_admin_token(request.form.get("token", "")):
        log.warning("admin page: wrong token from %s", request.remote_addr)
        flash("Wrong admin token.", "error")
        return back()
    security.log_in()
    flash("Logged in.", "ok")
    return back()


@bp.post("/ui/logout")
def logout() -> Response:
    security.log_out()
    flash("Logged out.", "ok")
    return back()


@bp.post("/ui/deadletters/<event_id>/retry")
def retry_dead_letter(event_id: str) -> Response:
    """Queue a dead letter again at the end of its platform's stream, with the same event id."""
    with _db().write() as session:
        event = requeue_dead(session, event_id)
        seq = event.seq if event is not None else None
    if seq is None:
        flash(f"No dead letter {event_id} (already retried?).", "error")
    else:
        flash(f"Dead letter {event_id} queued again as seq {seq}.", "ok")
    return back("dead-letters")


@bp.post("/ui/replay")
def replay() -> Response:
    """Queue a platform's past events again, scoped by seq, room and time."""
    try:
        scope: ReplayRequest = parse_replay(request.form)
        with _db().write() as session:
            count = replay_stream(
                session,
                scope.platform,
                from_seq=scope.from_seq,
                room_global_id=scope.room_global_id,
                since=scope.since,
            )
    except (ValueError, LookupError, ApiError) as exc:
        flash(f"Replay refused: {exc}", "error")
        return back("replay")
    noun = "event" if count == 1 else "events"
    flash(f"Replay queued {count} {noun} for {scope.platform} ({scope.describe()}).", "ok")
    return back("replay")
