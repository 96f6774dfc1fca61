"""Errors the API answers, as one small tree; each carries its HTTP status.

ApiError (status, message, errors)
├── BadRequest        400  a body that does not validate; ``errors`` names the fields
├── Unauthorized      401  missing or unknown token
├── Forbidden         403  a valid caller doing what it may not (another platform's user…)
├── NotFound          404  an unknown room, platform, user or dead letter, named
└── Conflict          409  an Idempotency-Key reused for a different body
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409
