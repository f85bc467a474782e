"""Reconnect delays: exponential, bounded, jittered within the bound, and validated."""

from __future__ import annotations

import random

import pytest

from live.feeds import BackoffPolicy


def test_delays_grow_exponentially_up_to_the_maximum() -> None:
    policy = BackoffPolicy(initial_seconds=0.5, factor=2, maximum_seconds=4, jitter=0)
    rng = random.Random(1)
    assert [policy.delay(n, rng) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.ceiling(10_000) == 4  # no overflow however long the outage


def test_jitter_stays_within_its_band_and_spreads_the_delays() -> None:
    policy = BackoffPolicy(initial_seconds=1, maximum_seconds=8, jitter=0.5)
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(500)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert max(delays) - min(delays) > 1.5  # engines restarted together do not stay in step


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"initial_seconds": 0}, "initial_seconds"),
        ({"initial_seconds": 5, "maximum_seconds": 1}, "maximum_seconds"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.0}, "jitter"),
        ({"reset_after_seconds": -1}, "reset_after"),
    ],
)
def test_nonsense_settings_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**settings)
