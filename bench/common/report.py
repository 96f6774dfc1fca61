"""The end of a benchmark's output: the table of figures with targets, checks and notes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.checks import Check


def verdict(value: float | None, good: Callable[[float], bool]) -> str:
    """PASS or MISS for a figure against its target; n/a when it is missing or NaN."""
    if value is None or value != value:
        return "n/a"
    return "PASS" if good(value) else "MISS"


class Table:
    """Rows of (figure, value, target, result), printed in aligned columns.

    ``none``: what a figure that is None shows ("n/a"), or None to leave its row out;
    ``unmet``: the verdict on a target when its figure is missing or None."""

    def __init__(
        self, figures: dict[str, Any], none: str | None = None, unmet: str = "n/a"
    ) -> None:
        self.figures = figures
        self.none = none
        self.unmet = unmet
        self.rows: list[tuple[str, str, str, str]] = []

    def row(
        self, label: str, key: str, spec: str, target: str = "", ok: bool | str | None = None
    ) -> None:
        """The figure ``key`` formatted with ``spec``, if the run has it; ``ok`` is a verdict
        or whether the target is met (None: no verdict)."""
        if key not in self.figures:
            return
        value = self.figures[key]
        if value is None and self.none is None:
            return
        self.add(label, self.none if value is None else format(value, spec), target, ok)

    def target(
        self, label: str, key: str, spec: str, target: str, good: Callable[[float], bool]
    ) -> None:
        """A figure with its target: PASS if ``good(value)``, else MISS."""
        value = self.figures.get(key)
        ok = self.unmet if value is None else verdict(value, good)
        self.row(label, key, spec, target, ok)

    def met(self, key: str, good: Callable[[float], bool]) -> bool:
        """Whether the figure ``key`` is there and meets its target."""
        value = self.figures.get(key)
        return value is not None and good(value)

    def add(self, label: str, value: str, target: str = "", ok: bool | str | None = None) -> None:
        if isinstance(ok, bool):
            ok = "PASS" if ok else "MISS"
        self.rows.append((label, value, target, ok or ""))

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows) if self.rows else 10
        print()
        print(f"{'figure':<{width}}  {'value':>9}  {'target':>8}  result")
        print(f"{'-' * width}  {'-' * 9}  {'-' * 8}  ------")
        for label, value, target, ok in self.rows:
            print(f"{label:<{width}}  {value:>9}  {target:>8}  {ok}")


def print_checks(title: str, checks: list[Check]) -> None:
    print()
    print(title)
    for c in checks:
        print("  " + c.line())


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print("note: " + note)
