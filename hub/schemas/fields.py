"""Fields and base schemas every body shares: ids as given, lenient booleans, names."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate


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


class TokenInBody(LenientSchema):
    token = String(load_only=True, metadata={"description": "Compatibility: the token."})
