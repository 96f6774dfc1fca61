"""Operating endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from hub.schemas.calls import Envelope

blp = Blueprint("ops", __name__, description="Health and metrics.")


@blp.route("/healthz", methods=["GET"])
@blp.response(200, Envelope)
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": 200, "message": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, Envelope)
@blp.alt_response(503, schema=Envelope, description="The database is not reachable")
def readyz() -> tuple[dict[str, Any], int]:
    """The database is reachable."""
    try:
        with current_app.extensions["hub"].db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not ready"
        return {"status": 503, "message": f"database unreachable: {type(exc).__name__}"}, 503
    return {"status": 200, "message": "ready"}, 200


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    responses={
        "200": {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
def metrics() -> Response:
    """Queue depth and oldest pending age per platform, deliveries by outcome, dead letters."""
    body = current_app.extensions["hub"].metrics.render()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
