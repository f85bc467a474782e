"""Exchange reads and cancels retried while their outcome is unknown.

A network error, a 5xx or a rate limit (429/418, honouring Retry-After) is retried in a
tenacity loop waiting by the venue's `retry` backoff (tradepipe/retries.py); after the last
attempt `BrokerUnavailableError` tells the engine to try again later. Refused credentials
and answers ccxt cannot read are errors at once: retrying would not change them. Placing an
order has its own loop in the broker (it looks the order up before sending again) and
shares `back_off`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import ccxt
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from live.brokers.exchange import (
    MalformedResponseError,
    exchange_message,
    is_transient,
    retry_after_seconds,
)
from live.brokers.protocol import BrokerError, BrokerUnavailableError
from tradepipe.retries import Backoff, delay_after

__all__ = ["PARSE_ERRORS", "ExchangeCalls"]

log = logging.getLogger(__name__)

# What ccxt raises while parsing an answer that is not the JSON the endpoint promises.
PARSE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


class ExchangeCalls:
    """Calls of one venue's client, `attempts` tries each; `retried` counts the retries."""

    def __init__(
        self,
        name: str,
        backoff: Backoff,
        attempts: int,
        client: Any,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.name = name
        self.attempts = attempts
        self.client = client
        self.retried = 0
        # the exchange's Retry-After wins when it asks for longer than the backoff
        self._wait = backoff.wait(rng, hint=lambda error: retry_after_seconds(client, error))
        self._sleep = sleep

    async def call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """One read or cancel, retried while the outcome is unknown."""

        async def once() -> Any:
            try:
                return await method(*args)
            except ccxt.AuthenticationError as error:
                raise BrokerError(
                    f"{self.name}: credentials refused ({what}): {exchange_message(error)}"
                ) from None
            except (ccxt.BadResponse, *PARSE_ERRORS) as error:
                # ccxt trips over a body it cannot read in many ways: one clear error
                raise MalformedResponseError(
                    f"{self.name}: malformed answer to {what}: {type(error).__name__}: {error}"
                ) from None

        def note(state: RetryCallState) -> None:
            self._note_retry(what, state.attempt_number, _failure(state), state.upcoming_sleep)

        def give_up(state: RetryCallState) -> NoReturn:
            self._give_up(what, state.attempt_number, _failure(state))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            before_sleep=note,
            retry_error_callback=give_up,
        )
        return await retrying(once)

    async def back_off(self, attempt: int, what: str, error: BaseException) -> int:
        """For a loop of its own (placing an order): sleep before the next try, or raise
        `BrokerUnavailableError` after the last."""
        attempt += 1
        if attempt >= self.attempts:
            self._give_up(what, attempt, error)
        delay = delay_after(self._wait, attempt, error)
        self._note_retry(what, attempt, error, delay)
        await self._sleep(delay)
        return attempt

    def _note_retry(self, what: str, attempt: int, error: BaseException, delay: float) -> None:
        self.retried += 1
        log.warning(
            "%s: %s failed (%s), retry in %.2f s",
            self.name,
            what,
            type(error).__name__,
            delay,
            extra={"venue": self.name, "attempt": attempt},
        )

    def _give_up(self, what: str, attempts: int, error: BaseException) -> NoReturn:
        raise BrokerUnavailableError(
            f"{self.name}: {what} failed {attempts} times: {exchange_message(error)}"
        ) from None


def _failure(state: RetryCallState) -> BaseException:
    error = state.outcome.exception() if state.outcome is not None else None
    assert error is not None  # tenacity retries and gives up only after a failure
    return error
