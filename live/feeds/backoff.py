"""Reconnect delays: exponential, bounded, jittered.

Jitter matters because every engine (and every feed in it) loses the exchange at the same
moment when the exchange restarts; without it they all come back in lockstep and are
refused together. Bounded because a feed must keep trying for as long as the engine runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delay before reconnect attempt n (1, 2, ...): `initial * factor**(n-1)`, capped at
    `maximum`, then scaled by a uniform draw in [1 - jitter, 1]. A connection that stayed up
    for `reset_after_seconds` resets the count, so a server that accepts and drops at once
    is still retried slowly."""

    initial_seconds: float = 0.5
    factor: float = 2.0
    maximum_seconds: float = 30.0
    jitter: float = 0.5
    reset_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_seconds <= self.maximum_seconds:
            raise ValueError(
                "backoff needs 0 < initial_seconds <= maximum_seconds, got "
                f"{self.initial_seconds} and {self.maximum_seconds}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter}")
        if self.reset_after_seconds < 0:
            raise ValueError("reset_after_seconds must not be negative")

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter (the upper bound of attempt `attempt`)."""
        exponent = min(max(attempt, 1) - 1, 64)  # beyond 2**64 every delay is the maximum
        return float(min(self.maximum_seconds, self.initial_seconds * self.factor**exponent))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return self.ceiling(attempt) * (1.0 - self.jitter * rng.random())
