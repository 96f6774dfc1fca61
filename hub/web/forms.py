"""Reading the admin page's forms: what a replay is scoped to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.ids import parse_global_id

MAX_SEQ = 2**31 - 1  # seq is a 32-bit integer column


@dataclass(frozen=True)
class ReplayRequest:
    """The arguments of ``hub.outbox.replay.replay_stream`` beyond the session."""

    platform: str
    from_seq: int | None = None
    room_global_id: str | None = None
    since: datetime | None = None  # naive UTC, as the hub stores every time

    def describe(self) -> str:
        parts = [f"from seq {self.from_seq}" if self.from_seq is not None else "whole stream"]
        if self.room_global_id:
            parts.append(f"room {self.room_global_id}")
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M:%S} UTC")
        return ", ".join(parts)


def _field(form: Mapping[str, str], name: str) -> str | None:
    value = (form.get(name) or "").strip()
    return value or None


def parse_since(text: str) -> datetime:
    """Read an ISO time (``2025-01-02T03:04``, with or without zone; no zone means UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'since' is not a time like 2025-01-31T14:05: {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_replay(form: Mapping[str, str]) -> ReplayRequest:
    """Validate the replay form; raise ValueError saying which field is wrong."""
    platform = _field(form, "platform")
    if platform is None:
        raise ValueError("choose a platform")
    from_seq = None
    if (text := _field(form, "from_seq")) is not None:
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_SEQ:
            raise ValueError(f"'from seq' must be a whole number from 1: {text!r}")
        from_seq = int(text)
    room = _field(form, "room_global_id")
    if room is not None:
        parse_global_id(room)  # ValueError names the expected form
    since_text = _field(form, "since")
    since = parse_since(since_text) if since_text is not None else None
    return ReplayRequest(platform, from_seq, room, since)
