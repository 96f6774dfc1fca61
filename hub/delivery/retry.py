"""The retry schedule: exponential backoff with jitter, capped; and the maximum age of an event."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float
    max_delay: float
    dead_letter_after: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetryPolicy:
        return cls(
            config["HUB_RETRY_BASE_DELAY"],
            config["HUB_RETRY_MAX_DELAY"],
            config["HUB_DEAD_LETTER_AFTER"],
        )

    def delay(self, failures: int) -> float:
        """Seconds to wait after the n-th consecutive failure ("equal jitter": half fixed)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(max(failures, 1) - 1, 62))
        return random.uniform(ceiling / 2, ceiling)
