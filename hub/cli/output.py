"""What the commands share: the app's services, tables, ages and times for people to read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app


def hub_of() -> Any:
    """Return the services of the current app (``hub.Hub``)."""
    return current_app.extensions["hub"]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Lay out rows under headers in left-aligned columns."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def age(seconds: float | None) -> str:
    """Say a duration briefly: 45s, 3m12s, 2h05m, 3d04h."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def when(moment: datetime | None) -> str:
    """Show a stored (naive UTC) time."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z" if moment else "-"


def short(text: str | None, width: int = 60) -> str:
    """Cut a long text (an error) to one line of ``width`` characters."""
    if not text:
        return "-"
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
