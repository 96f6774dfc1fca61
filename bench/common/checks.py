"""Whether a phase lost, duplicated, added or reordered messages, and a run's results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.posting import Sent, accepted


@dataclass
class Check:
    """Integrity of one phase at one receiver."""

    phase: str
    receiver: str
    expected: int
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    ordered: bool = True  # whether order is part of the check

    def compare(self, got: Iterable[str], expected_order: list[str]) -> None:
        """Count what ``got`` (texts, in order of receipt) lacks, repeats, adds or reorders
        against ``expected_order``."""
        rank = {text: i for i, text in enumerate(expected_order)}
        seen: set[str] = set()
        previous = -1
        for text in got:
            if text in seen:
                self.duplicates += 1
                continue
            seen.add(text)
            position = rank.get(text)
            if position is None:
                self.unexpected += 1
                continue
            if self.ordered and position < previous:
                self.out_of_order += 1
            previous = max(previous, position)
        self.missing = len(set(rank) - seen)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unexpected or self.out_of_order)

    def line(self) -> str:
        order = f"out-of-order {self.out_of_order}" if self.ordered else "order n/a"
        verdict = "OK" if self.ok else "FAIL"
        return (
            f"{self.phase:<11} {self.receiver}: {self.received - self.duplicates}/{self.expected}"
            f" received, missing {self.missing}, duplicates {self.duplicates},"
            f" unexpected {self.unexpected}, {order}  {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {"ok": self.ok}


def check(
    phase: str, receiver: str, got: list[str], expected_order: list[str], ordered: bool = True
) -> Check:
    """The check of one receiver's texts of a phase against the order the hub accepted."""
    result = Check(phase, receiver, len(expected_order), received=len(got), ordered=ordered)
    result.compare(got, expected_order)
    return result


@dataclass
class StreamCheck(Check):
    """Integrity of one phase at one WebSocket: also ``seq`` strictly increasing, and the
    POSTs that failed (their messages cannot be expected)."""

    seq_regressions: int = 0
    post_errors: int = 0

    @classmethod
    def of(
        cls, phase: str, name: str, got: list[tuple[float, int, str]], items: Iterable[Sent]
    ) -> StreamCheck:
        """Compare what one socket received, (receive time, seq, text), with what the hub
        accepted, in acceptance order (the message id: a message takes its receivers' seqs
        before its id, so for the messages of one room id order is seq order, on SQLite and
        on PostgreSQL)."""
        items = list(items)
        order = [i.text for i in accepted(items)]
        result = cls(phase, name, len(order), received=len(got))
        result.post_errors = sum(1 for i in items if i.sent and i.status != 202)
        previous_seq = 0
        for _, seq, _ in got:
            if seq <= previous_seq:
                result.seq_regressions += 1
            previous_seq = max(previous_seq, seq)
        result.compare((text for _, _, text in got), order)
        return result

    @property
    def ok(self) -> bool:
        return super().ok and not (self.seq_regressions or self.post_errors)

    def line(self) -> str:
        return (
            f"{self.phase:<18} {self.receiver}: {self.received - self.duplicates}/{self.expected}"
            f" received, missing {self.missing}, duplicates {self.duplicates}, unexpected"
            f" {self.unexpected}, out of order {self.out_of_order}, seq regressions"
            f" {self.seq_regressions}, failed posts {self.post_errors}"
            f"  {'OK' if self.ok else 'FAIL'}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("receiver", "ordered")}
        return {"phase": self.phase, "socket": self.receiver, **data, "ok": self.ok}


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> cores used

    @property
    def ok(self) -> bool:
        """Every check passed and the run was not aborted."""
        return all(c.ok for c in self.checks) and not any(
            n.startswith("aborted") for n in self.notes
        )
