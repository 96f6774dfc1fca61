"""What processes tell each other: which streams have news, which changed owner, and direct
frames for a socket another process holds. One text form for the datagram and for NOTIFY."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

ALL = "*"  # every stream may have news: the receiver reads them all (too many ids to list)


def _ids(platform_ids: Iterable[int]) -> str:
    return ",".join(str(pid) for pid in sorted(platform_ids))


def encode_changes(news: Iterable[int], moves: Iterable[int]) -> str:
    """``"<news ids>;<lease-moved ids>"``, e.g. ``"3,7;"``."""
    return f"{_ids(news)};{_ids(moves)}"


def decode_changes(text: str) -> tuple[set[int], set[int]]:
    """The (news, lease moves) of ``encode_changes``' text; unreadable parts are ignored."""
    news, _, moves = text.partition(";")

    def read(part: str) -> set[int]:
        return {int(p) for p in part.split(",") if p.strip().isdigit()}

    return read(news), read(moves)


def encode_direct(frames: dict[int, dict[str, Any]]) -> str:
    """Direct frames for another process's sockets (platform id -> frame), as JSON text."""
    return json.dumps(frames, separators=(",", ":"), ensure_ascii=False)


def deliver_direct(text: str | bytes, send: Callable[[int, dict[str, Any]], bool]) -> None:
    """Send each frame of ``encode_direct``'s text with ``send(platform_id, frame)``; never
    raises (a bad relay is logged): it runs in the thread that listens to other processes."""
    try:
        for platform_id, frame in json.loads(text).items():
            send(int(platform_id), frame)
    except Exception:
        log.exception("relaying another process's direct message failed")
