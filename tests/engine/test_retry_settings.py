"""The engine's waits between tries, from its settings: database writes double without
jitter up to their cap, an unavailable venue's tries double jittered within theirs, and
settings that cannot make a backoff are refused naming the engine settings."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from live.engine.config import EngineConfig


def _config(**changes: float) -> EngineConfig:
    return EngineConfig(database_url="sqlite://", strategies_dir=Path("strategies"), **changes)


def test_database_retries_double_up_to_their_cap() -> None:
    config = _config(db_retry_initial_seconds=0.5, db_retry_max_seconds=3.0)
    assert [config.db_retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_venue_retries_are_jittered_below_their_doubling_bound() -> None:
    config = _config(broker_retry_initial_seconds=1.0, broker_retry_max_seconds=8.0)
    rng = random.Random(5)
    delays = [config.broker_retry.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 100  # engines that lost the venue together return apart


@pytest.mark.parametrize("prefix", ["db_retry", "broker_retry"])
def test_a_first_wait_beyond_the_cap_is_refused_naming_the_settings(prefix: str) -> None:
    changes = {f"{prefix}_initial_seconds": 9.0, f"{prefix}_max_seconds": 1.0}
    with pytest.raises(ValueError, match=f"engine setting {prefix}_\\*: .*maximum_seconds"):
        _config(**changes)
