"""Marshmallow schemas: the bodies platforms and admins send, and the payloads the hub answers."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

TRANSPORTS = ("rest", "websocket", "poll")


class String(fields.String):
    """A string that may not hold NUL characters (PostgreSQL cannot store them)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("May not contain NUL characters.")
        return text


class LocalId(fields.Field):
    """A platform's own id: an integer or a non-empty string, kept as given."""

    default_error_messages = {"invalid": "Must be an integer or a non-empty string."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not (0 < len(value) <= 255):
            raise self.make_error("invalid")
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("May not contain NUL characters.")
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


class PlatformName(String):
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
    token = String(required=True, validate=validate.Length(1, 512))
    supportAudio = FlexibleBoolean(load_default=False)
    supportImage = FlexibleBoolean(load_default=False)
    transport = String(load_default="rest", validate=validate.OneOf(TRANSPORTS))
    enabled = FlexibleBoolean(load_default=True)
    wantsRecipients = FlexibleBoolean(load_default=True)

    @validates_schema
    def _endpoint_for_rest(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("transport", "rest") == "rest" and not data.get("endpoint"):
            raise ValidationError("Required for the rest transport.", "endpoint")


class TokenInBody(LenientSchema):
    token = String(load_only=True, metadata={"description": "Compatibility: the token."})


class UserIn(TokenInBody):
    id = LocalId(required=True)
    name = String(required=True, validate=validate.Length(1, 255))
    platform = String(metadata={"description": "Optional; must be the caller's own name."})


class RoomIn(TokenInBody):
    id = LocalId(required=True)
    name = String(required=True, validate=validate.Length(1, 255))
    type = String(required=True, validate=validate.OneOf(["private", "public"]))
    users = fields.List(
        fields.Dict(keys=String(), values=fields.List(LocalId())),
        required=True,
        metadata={"description": 'Members by platform: [{"GWT_CHAT": [1, 2]}, {"NET": ["a"]}]'},
    )


class MessageIn(TokenInBody):
    roomOriginalPlatform = PlatformName(required=True)
    roomId = LocalId(required=True)
    senderId = LocalId(required=True)
    senderPlatform = String(metadata={"description": "Optional; the caller's own name."})
    text = String(required=True, validate=validate.Length(max=65536))
    attachments = fields.List(String(), load_default=list)
    direct = fields.Boolean(load_default=False)
    clientMessageId = String(validate=validate.Length(1, 255))


class Envelope(Schema):
    status = fields.Integer(required=True)
    message = String(required=True)
    errors = fields.Dict(keys=String(), values=fields.List(String()))


class UserEnvelope(Envelope):
    globalId = String()


class MessageAccepted(Envelope):
    id = fields.Raw(metadata={"description": "The message id, the same for every receiver."})
    receivers = fields.Integer()
    reached = fields.Integer(metadata={"description": "direct: platforms reached now"})
    stored = fields.Boolean(metadata={"description": "direct: false, nothing was stored"})


class Addressees(fields.Field):
    """ "$all", or a list of platform names and user global ids."""

    default_error_messages = {"invalid": 'Must be "$all" or a non-empty list of names / ids.'}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value == "$all":
            return value
        if (
            isinstance(value, list)
            and 0 < len(value) <= 1000
            and all(isinstance(v, str) and 0 < len(v) <= 320 and "\x00" not in v for v in value)
        ):
            return value
        raise self.make_error("invalid")

    def _jsonschema_type_mapping(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "string", "enum": ["$all"]},
                {"type": "array", "items": {"type": "string"}},
            ]
        }


class NotificationIn(TokenInBody):
    title = String(required=True, validate=validate.Length(1, 255))
    body = String(required=True, validate=validate.Length(max=65536))
    priority = fields.Integer(load_default=1, strict=True, validate=validate.Range(0, 3))
    to = Addressees(required=True)


class BusIn(TokenInBody):
    last_message = fields.Integer(
        allow_none=True,
        load_default=None,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "The last seq received; acknowledges everything up to it."},
    )
    timeout = fields.Float(
        validate=validate.Range(min=0), metadata={"description": "Wait at most this (seconds)."}
    )


class BusOut(Schema):
    messages = fields.List(fields.Dict())
    last_message = fields.Integer(allow_none=True)


class UserOut(Schema):
    id = LocalId()
    name = String()
    platform = String()
    globalId = String()


class PlatformUserOut(Schema):
    id = LocalId()
    name = String()
    platform = String()


class PlatformOut(Schema):
    name = String()
    supportAudio = fields.Boolean()
    supportImage = fields.Boolean()
    users = fields.List(fields.Nested(PlatformUserOut))


class UsersQuery(LenientSchema):
    platform = String(metadata={"description": "Only this platform's users."})
    token = String(load_only=True)


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
