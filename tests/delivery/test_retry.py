"""The retry schedule: doubling from the base delay, jittered, never above the cap."""

from __future__ import annotations

import pytest

from hub.delivery.retry import RetryPolicy


@pytest.mark.parametrize(
    ("failures", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (500, 300.0)]
)
def test_delay_doubles_up_to_the_cap_with_jitter(failures: int, ceiling: float) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=300.0, dead_letter_after=604800)
    delays = [policy.delay(failures) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered: platforms that failed together do not retry together


def test_policy_reads_the_configuration() -> None:
    policy = RetryPolicy.from_config(
        {"HUB_RETRY_BASE_DELAY": 0.5, "HUB_RETRY_MAX_DELAY": 2, "HUB_DEAD_LETTER_AFTER": 60}
    )
    assert (policy.base_delay, policy.max_delay, policy.dead_letter_after) == (0.5, 2, 60)
    assert max(policy.delay(50) for _ in range(100)) <= 2
