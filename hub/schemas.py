"""Marshmallow schemas: the bodies platforms and admins send, and the payloads the hub answers."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

TRANSPORTS = ("rest", "websocket", "poll")


class LocalId(fields.Field):
    """A platform's own id: an integer or a non-empty string, kept as given."""

    default_error_messages = {"invalid": "Must be an integer or a non-empty string."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not (0 < len(value) <= 255):
            raise self.make_error("invalid")
        if isinstance(value, int) and abs(value) >= 2**63:
            raise ValidationError("Integer ids must fit in 64 bits.")
        return value

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value

    def _jsonschema_type_mapping(self) -> dict[str, Any]:
        return {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]}


class FlexibleBoolean(fields.Boolean):
    """A JSON boolean, or TP2's strings "True"/"False" in any case."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, str):
            value = value.strip().lower()
        return super()._deserialize(value, attr, data, **kwargs)


class PlatformName(fields.String):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=[
                validate.Length(1, 64),
                validate.Regexp(r"^[^:]+$", error="A platform name may not contain ':'."),
            ],
            **kwargs,
        )


class LenientSchema(Schema):
    """Ignore unknown fields: later versions of a platform may send more than we know."""

    class Meta:
        unknown = EXCLUDE


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
    token = fields.String(required=True, validate=validate.Length(1, 512))
    supportAudio = FlexibleBoolean(load_default=False)
    supportImage = FlexibleBoolean(load_default=False)
    transport = fields.String(load_default="rest", validate=validate.OneOf(TRANSPORTS))
    enabled = FlexibleBoolean(load_default=True)
    wantsRecipients = FlexibleBoolean(load_default=True)

    @validates_schema
    def _endpoint_for_rest(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("transport", "rest") == "rest" and not data.get("endpoint"):
            raise ValidationError("Required for the rest transport.", "endpoint")


class TokenInBody(LenientSchema):
    token = fields.String(load_only=True, metadata={"description": "Compatibility: the token."})


class UserIn(TokenInBody):
    id = LocalId(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 255))
    platform = fields.String(metadata={"description": "Optional; must be the caller's own name."})


class RoomIn(TokenInBody):
    id = LocalId(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 255))
    type = fields.String(required=True, validate=validate.OneOf(["private", "public"]))
    users = fields.List(
        fields.Dict(keys=fields.String(), values=fields.List(LocalId())),
        required=True,
        metadata={"description": 'Members by platform: [{"GWT_CHAT": [1, 2]}, {"NET": ["a"]}]'},
    )


class MessageIn(TokenInBody):
    roomOriginalPlatform = PlatformName(required=True)
    roomId = LocalId(required=True)
    senderId = LocalId(required=True)
    senderPlatform = fields.String(metadata={"description": "Optional; the caller's own name."})
    text = fields.String(required=True, validate=validate.Length(max=65536))
    attachments = fields.List(fields.String(), load_default=list)
    direct = fields.Boolean(load_default=False)
    clientMessageId = fields.String(validate=validate.Length(1, 255))


class Envelope(Schema):
    status = fields.Integer(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class UserEnvelope(Envelope):
    globalId = fields.String()


class MessageAccepted(Envelope):
    id = fields.Integer(metadata={"description": "The message id, the same for every receiver."})
    receivers = fields.Integer()


class UserOut(Schema):
    id = LocalId()
    name = fields.String()
    platform = fields.String()
    globalId = fields.String()


class PlatformUserOut(Schema):
    id = LocalId()
    name = fields.String()
    platform = fields.String()


class PlatformOut(Schema):
    name = fields.String()
    supportAudio = fields.Boolean()
    supportImage = fields.Boolean()
    users = fields.List(fields.Nested(PlatformUserOut))


class UsersQuery(LenientSchema):
    platform = fields.String(metadata={"description": "Only this platform's users."})
    token = fields.String(load_only=True)


class AdminPlatformOut(Schema):
    name = fields.String()
    endpoint = fields.String(allow_none=True)
    transport = fields.String()
    supportAudio = fields.Boolean()
    supportImage = fields.Boolean()
    enabled = fields.Boolean()
    wantsRecipients = fields.Boolean()
    health = fields.String()
    lastError = fields.String(allow_none=True)
    nextAttemptAt = fields.String(allow_none=True)
    queueDepth = fields.Integer()
    lastSeq = fields.Integer()
    users = fields.Integer()


class DeadLetterOut(Schema):
    id = fields.String(metadata={"description": "The event id (webhook-id)."})
    platform = fields.String()
    seq = fields.Integer()
    event = fields.String()
    attempts = fields.Integer()
    lastError = fields.String(allow_none=True)
    createdAt = fields.String()
    deadAt = fields.String(allow_none=True)
    payload = fields.Dict()


class DeadLettersQuery(LenientSchema):
    platform = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
