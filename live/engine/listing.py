"""The venue's word on a bot's symbol, asked before the engine starts the bot.

A symbol the venue does not list would never trade (a Binance stream of an unknown symbol
is silent: the bot would warm up forever), so such a bot goes to error naming the symbol.
The venue is asked through the kernel (`tradepipe.venue_symbols`, the same question
`tradepipe bots add` asks) in a worker thread, at most once per symbol per `ttl_seconds`.
A venue that cannot be asked (no REST side configured, or unreachable) refuses nothing:
`bots add` checked the symbol already, and a missing answer is logged, not guessed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tradepipe.venue_symbols import SymbolListError, listed_symbol_status, symbol_problem

__all__ = ["SymbolListing"]

log = logging.getLogger(__name__)


class SymbolListing:
    def __init__(
        self,
        rest_url: str | None,
        *,
        timeout_seconds: float = 10.0,
        ttl_seconds: float = 300.0,
        exchange: str = "binance",
    ) -> None:
        self.rest_url = rest_url
        self.timeout_seconds = timeout_seconds
        self.ttl_seconds = ttl_seconds
        self.exchange = exchange
        self._answers: dict[str, tuple[float, str | None]] = {}  # symbol -> (when, problem)

    async def problem(self, symbol: str) -> str | None:
        """Why a bot cannot trade `symbol` on the venue, or None (listed, or unknown)."""
        if self.rest_url is None:
            return None
        cached = self._answers.get(symbol)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_seconds:
            return cached[1]
        try:
            status = await asyncio.to_thread(
                listed_symbol_status, self.rest_url, symbol, timeout_seconds=self.timeout_seconds
            )
        except SymbolListError as error:
            log.warning(
                "cannot ask %s whether it lists %s (%s): starting the bot unchecked",
                self.exchange,
                symbol,
                error,
                extra={"symbol": symbol},
            )
            self._answers[symbol] = (time.monotonic(), None)  # no wait per bot start
            return None
        problem = symbol_problem(self.exchange, symbol, status)
        self._answers[symbol] = (time.monotonic(), problem)
        return problem
