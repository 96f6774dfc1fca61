"""Wake whoever waits on a platform's stream (socket pushers, long polls) once events commit."""

from __future__ import annotations

import threading
from collections.abc import Iterable

# A consumer with nothing to do waits for a wake-up; it re-reads its stream this often anyway,
# in case one was missed by both the wake-up and the safety poll.
RECHECK_SECONDS = 60.0


class StreamNotifier:
    """A version counter and a condition per platform: waiters sleep until the version moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conditions: dict[int, threading.Condition] = {}
        self._versions: dict[int, int] = {}

    def _condition(self, platform_id: int) -> threading.Condition:
        with self._lock:
            condition = self._conditions.get(platform_id)
            if condition is None:
                condition = self._conditions[platform_id] = threading.Condition()
            return condition

    def version(self, platform_id: int) -> int:
        """Read the version first, then the database, then wait: no news is missed between."""
        return self._versions.get(platform_id, 0)

    def notify(self, platform_ids: Iterable[int]) -> None:
        for platform_id in platform_ids:
            condition = self._condition(platform_id)
            with condition:
                self._versions[platform_id] = self._versions.get(platform_id, 0) + 1
                condition.notify_all()

    def wait(self, platform_id: int, seen: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for news after version ``seen``; True if there is."""
        condition = self._condition(platform_id)
        with condition:
            return condition.wait_for(lambda: self.version(platform_id) != seen, timeout)
