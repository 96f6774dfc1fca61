"""How the admin page writes times, ages and errors, and keeps secrets out of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
MAX_ERROR = 240


def utc_text(moment: datetime | None) -> str:
    """Format a stored (naive UTC) time for people: ``2025-01-02 03:04:05 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def iso(moment: datetime | None) -> str:
    """Format a stored time for ``<time datetime>``, which the page's script localises."""
    return moment.isoformat(timespec="seconds") + "Z" if moment else ""


def duration(seconds: float) -> str:
    """Say how long, roughly: ``42 s``, ``5 min``, ``3 h 10 min``, ``2 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


class Redactor:
    """Replace every secret (platform tokens, the admin token) found in a text shown on the page.

    An error is a platform's own answer, and a platform may echo the request back (debug pages
    do, headers included), so errors are scrubbed before they are rendered.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a token containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str | None, limit: int | None = None) -> str:
        if not text:
            return ""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        if limit is not None and len(text) > limit:
            text = text[: limit - 1] + "…"
        return text


def safe_endpoint(endpoint: str | None) -> str:
    """Show an endpoint without the password a URL may carry (``http://user:pw@host/``)."""
    if not endpoint:
        return ""
    parts = urlsplit(endpoint)
    if parts.password is None:
        return endpoint
    host = parts.hostname or ""
    netloc = f"{parts.username}:{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
