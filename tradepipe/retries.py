"""Retry delays: exponential, bounded, jittered, as tenacity wait strategies.

The one backoff of the project: the feed's reconnects, the broker's exchange calls, the
outbox, the notifiers, the engine's database writes and research's REST requests all wait
by a `Backoff`. Loops that are plain retries run in tenacity (`Retrying`/`AsyncRetrying`
with `Backoff.wait()`); loops that do more between tries (the feed reconnecting, an order
looked up before it is sent again) ask `Backoff.delay(attempt)`, the same strategy.

Jitter matters because every engine (and every feed in it) loses the exchange at the same
moment when the exchange restarts; without it they all come back in lockstep and are
refused together. The jitter draws from a `random.Random` the caller may seed (tenacity's
own jittered waits draw from the process-wide generator), so a seeded test or replay waits
the same delays every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, wait_exponential
from tenacity.wait import wait_base

__all__ = ["Backoff", "delay_after", "wait_at_least_hint", "wait_jittered_exponential"]


class wait_jittered_exponential(wait_exponential):  # named like tenacity's own waits
    """tenacity's exponential wait, capped, then scaled by a uniform draw in [1 - jitter, 1]
    from `rng`: the ceiling stays the bound, the spread keeps engines out of step."""

    def __init__(
        self, *, initial: float, factor: float, maximum: float, jitter: float, rng: random.Random
    ) -> None:
        super().__init__(multiplier=initial, max=maximum, exp_base=factor)
        self.jitter = jitter
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = super().__call__(retry_state)
        return float(ceiling * (1.0 - self.jitter * self.rng.random()))


class wait_at_least_hint(wait_base):  # named like tenacity's own waits
    """`base`, or the receiver's own hint about the failure when that is longer (a
    Retry-After), never longer than `cap` when one is given."""

    def __init__(
        self,
        base: wait_base,
        hint: Callable[[BaseException], float | None],
        cap: float | None = None,
    ) -> None:
        self.base = base
        self.hint = hint
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.base(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        asked = self.hint(error) if error is not None else None
        if asked is not None:
            delay = max(delay, asked)
            if self.cap is not None:
                delay = min(delay, self.cap)
        return float(delay)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1, 2, ...): `initial * factor**(n-1)`, capped at `maximum`,
    then scaled by a uniform draw in [1 - jitter, 1]."""

    initial_seconds: float = 0.5
    maximum_seconds: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

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

    def wait(
        self,
        rng: random.Random | None = None,
        *,
        hint: Callable[[BaseException], float | None] | None = None,
        hint_capped: bool = False,
    ) -> wait_base:
        """The tenacity wait strategy; `hint` reads a failure's own wait (Retry-After),
        honoured when longer, and kept within `maximum_seconds` if `hint_capped`."""
        base: wait_base = wait_jittered_exponential(
            initial=self.initial_seconds,
            factor=self.factor,
            maximum=self.maximum_seconds,
            jitter=self.jitter,
            rng=rng or random.Random(),
        )
        if hint is None:
            return base
        return wait_at_least_hint(base, hint, self.maximum_seconds if hint_capped else None)

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter: the upper bound of retry `attempt`."""
        exponential = wait_exponential(self.initial_seconds, self.maximum_seconds, self.factor)
        return delay_after(exponential, attempt)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry `attempt`, for loops that are not tenacity's own."""
        return delay_after(self.wait(rng), attempt)


def delay_after(wait: wait_base, attempt: int, error: BaseException | None = None) -> float:
    """What `wait` says after failed attempt `attempt` (1, 2, ...), for a loop that does
    more between its tries than tenacity's retry loop would (the failure read by a hint)."""
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(attempt, 1)
    if error is not None:
        state.set_exception((type(error), error, error.__traceback__))
    return float(wait(state))
