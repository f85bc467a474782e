"""Retry delays: exponential, bounded, jittered within the bound, a receiver's hint honoured,
validated; and the same strategy driving tenacity's own retry loop."""

from __future__ import annotations

import random

import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from tradepipe.retries import Backoff


def test_delays_grow_exponentially_up_to_the_maximum() -> None:
    backoff = Backoff(initial_seconds=0.5, factor=2, maximum_seconds=4, jitter=0)
    rng = random.Random(1)
    assert [backoff.delay(n, rng) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff.ceiling(10_000) == 4  # no overflow however long the outage


def test_jitter_stays_within_its_band_and_spreads_the_delays() -> None:
    backoff = Backoff(initial_seconds=1, maximum_seconds=8, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(500)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert max(delays) - min(delays) > 1.5  # engines restarted together do not stay in step


def test_a_seeded_generator_gives_the_same_delays_every_run() -> None:
    backoff = Backoff(initial_seconds=0.5, maximum_seconds=4.0)
    first = [backoff.delay(n, random.Random(3)) for n in range(1, 6)]
    assert first == [backoff.delay(n, random.Random(3)) for n in range(1, 6)]


class Refused(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("refused")
        self.retry_after = retry_after


def _waits(backoff: Backoff, hints: list[float | None], *, capped: bool) -> list[float]:
    """The sleeps tenacity takes for one failure per hint, then a success."""
    waits: list[float] = []
    failures = iter(hints)

    def flaky() -> str:
        for hint in failures:
            raise Refused(hint)
        return "ok"

    def retry_after(error: BaseException) -> float | None:
        return error.retry_after if isinstance(error, Refused) else None

    retrying = Retrying(
        wait=backoff.wait(random.Random(1), hint=retry_after, hint_capped=capped),
        stop=stop_after_attempt(len(hints) + 1),
        retry=retry_if_exception_type(Refused),
        sleep=waits.append,
    )
    assert retrying(flaky) == "ok"
    return waits


def test_tenacity_waits_by_the_backoff_and_honours_a_longer_hint() -> None:
    backoff = Backoff(initial_seconds=0.5, maximum_seconds=4.0, jitter=0)
    assert _waits(backoff, [None, None, 3.0, 0.1], capped=False) == [0.5, 1.0, 3.0, 4.0]
    assert _waits(backoff, [60.0], capped=False) == [60.0]  # the exchange knows best
    assert _waits(backoff, [60.0], capped=True) == [4.0]  # a notifier waits at most maximum


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"initial_seconds": 0}, "initial_seconds"),
        ({"initial_seconds": 5, "maximum_seconds": 1}, "maximum_seconds"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.0}, "jitter"),
    ],
)
def test_nonsense_settings_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**settings)
