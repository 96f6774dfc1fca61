"""The bodies of the calls platforms make, and the answers and payloads they get back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from hub.schemas.fields import (
    LenientSchema,
    LocalId,
    PlatformName,
    String,
    TokenInBody,
)


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
