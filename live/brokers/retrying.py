"""Exchange reads and cancels retried while their outcome is unknown.

A network error, a 5xx or a rate limit (429/418, honouring Retry-After) is retried with the
venue's `RetryPolicy`; after the last attempt `BrokerUnavailableError` tells the engine to
try again later. Refused credentials and answers ccxt cannot read are errors at once:
retrying would not change them. Placing an order has its own loop in the broker (it looks
the order up before sending again) and shares `back_off`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt

from live.brokers.exchange import (
    MalformedResponseError,
    RetryPolicy,
    exchange_message,
    is_transient,
    retry_after_seconds,
)
from live.brokers.protocol import BrokerError, BrokerUnavailableError

__all__ = ["PARSE_ERRORS", "ExchangeCalls"]

log = logging.getLogger(__name__)

# What ccxt raises while parsing an answer that is not the JSON the endpoint promises.
PARSE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


class ExchangeCalls:
    """Calls of one venue's client; `retried` counts the retries."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        client: Any,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.name = name
        self.policy = policy
        self.client = client
        self.retried = 0
        self._rng = rng
        self._sleep = sleep

    async def call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """One read or cancel, retried while the outcome is unknown."""
        attempt = 0
        while True:
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
            except Exception as error:
                if not is_transient(error):
                    raise
                attempt = await self.back_off(attempt, what, error)

    async def back_off(self, attempt: int, what: str, error: BaseException) -> int:
        """Sleep before the next try, or raise `BrokerUnavailableError` after the last."""
        attempt += 1
        if attempt >= self.policy.attempts:
            raise BrokerUnavailableError(
                f"{self.name}: {what} failed {attempt} times: {exchange_message(error)}"
            ) from None
        delay = self.policy.delay(attempt, self._rng, retry_after_seconds(self.client, error))
        self.retried += 1
        log.warning(
            "%s: %s failed (%s), retry in %.2f s",
            self.name,
            what,
            type(error).__name__,
            delay,
            extra={"venue": self.name, "attempt": attempt},
        )
        await self._sleep(delay)
        return attempt
