"""The bodies of the admin calls: a registry entry in, platforms and dead letters out."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from adapters import TRANSPORTS
from hub.schemas.fields import FlexibleBoolean, LenientSchema, PlatformName, String


class PlatformEntrySchema(LenientSchema):
    """One entry of platforms.json, or the body of POST /admin/platforms."""

    id = fields.Integer(metadata={"description": "Ignored; kept for TP2 compatibility."})
    name = PlatformName(required=True)
    endpoint = fields.Url(
        require_tld=False,
        schemes={"http", "https"},
        allow_none=True,
        validate=validate.Length(max=2048),
    )
    token = String(required=True, validate=validate.Length(1, 512))
    supportAudio = FlexibleBoolean(load_default=False)
    supportImage = FlexibleBoolean(load_default=False)
    transport = String(load_default="rest", validate=validate.OneOf(list(TRANSPORTS)))
    enabled = FlexibleBoolean(load_default=True)
    wantsRecipients = FlexibleBoolean(load_default=True)

    @validates_schema
    def _endpoint_for_rest(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("transport", "rest") == "rest" and not data.get("endpoint"):
            raise ValidationError("Required for the rest transport.", "endpoint")


class AdminPlatformOut(Schema):
    name = String()
    endpoint = String(allow_none=True)
    transport = String()
    supportAudio = fields.Boolean()
    supportImage = fields.Boolean()
    enabled = fields.Boolean()
    wantsRecipients = fields.Boolean()
    health = String()
    lastError = String(allow_none=True)
    nextAttemptAt = String(allow_none=True)
    queueDepth = fields.Integer()
    lastSeq = fields.Integer()
    users = fields.Integer()


class DeadLetterOut(Schema):
    id = String(metadata={"description": "The event id (webhook-id)."})
    platform = String()
    seq = fields.Integer()
    event = String()
    attempts = fields.Integer()
    lastError = String(allow_none=True)
    createdAt = String()
    deadAt = String(allow_none=True)
    payload = fields.Dict()


class DeadLettersQuery(LenientSchema):
    platform = String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
