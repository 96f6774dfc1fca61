"""The HTTP API: blueprints, OpenAPI (served with its own Swagger UI files) and JSON errors."""

from __future__ import annotations

import logging
from typing import Any

import swagger_ui_bundle
from flask import Flask, jsonify, request, send_from_directory
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from hub.errors import ApiError, BadRequest
from hub.ingest.calls import flatten

log = logging.getLogger(__name__)


class HubApi(Api):
    """flask-smorest, answering every HTTP error in the hub's ``{"status", "message"}`` form."""

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        status = error.code or 500
        body: dict[str, Any] = {"status": status, "message": error.description or error.name}
        data = getattr(error, "data", None) or {}
        if "messages" in data:
            # webargs nests by location ("json", "query"); the field names are what matter.
            located = data["messages"]
            errors: dict[str, list[str]] = {}
            for location_messages in located.values():
                errors.update(flatten(location_messages))
            body["message"] = "invalid request: " + ", ".join(sorted(errors))
            body["errors"] = errors
        response = jsonify(body)
        response.status_code = status
        # Keep werkzeug's headers (a 405 must say Allow), which flask-smorest would drop.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response


def register_api(app: Flask) -> None:
    from hub.api import admin, ops, platform, realtime

    app.config.update(
        API_TITLE="Chat-integrator hub",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/swagger-ui/",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "platformToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A platform's token (or `token` in the body)",
                    },
                    "adminToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "HUB_ADMIN_TOKEN",
                    },
                }
            },
        },
    )
    api = HubApi(app)
    realtime_blp = realtime.blueprint(app, api.spec)
    for blueprint in (platform.blp, realtime_blp, admin.blp, ops.blp):
        api.register_blueprint(blueprint)
    from hub import web  # the /admin web page (HTML, session login), beside the JSON API

    web.init_app(app)

    @app.before_request
    def _refuse_oversized() -> None:
        # Refuse on the declared length before anything (token lookup, parsing) reads the body;
        # a body without a length is cut by werkzeug at MAX_CONTENT_LENGTH while it is read.
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge(f"body larger than HUB_MAX_BODY_BYTES ({limit} bytes)")

    @app.before_request
    def _refuse_nul_in_url() -> None:
        # No id or name holds NUL, and PostgreSQL refuses it in a query: say so up front.
        if "\x00" in request.path or any(
            "\x00" in k + v for k, v in request.args.items(multi=True)
        ):
            raise BadRequest("the URL may not contain NUL characters")

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):  # type: ignore[no-untyped-def]
        return jsonify(error.body()), error.status

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unexpected error")
        return jsonify({"status": 500, "message": "internal error; see the hub's log"}), 500

    @app.route("/swagger-ui/<path:filename>")
    def _swagger_ui(filename: str):  # type: ignore[no-untyped-def]
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
