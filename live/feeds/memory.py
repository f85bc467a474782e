"""An in-memory `Feed` for tests of everything downstream of market data.

It routes through the same `StreamRouter` as the Binance adapter, so duplicate and gap
rules, consumer isolation and metrics behave exactly as live; a test pushes trades (or raw
Binance messages) and drives the connection state by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from live.feeds.protocol import (
    FeedConsumer,
    FeedMetrics,
    FeedState,
    FeedStatus,
    Subscription,
    normalize_symbols,
)
from live.feeds.router import StreamRouter
from live.feeds.sanity import SanityConfig
from tradepipe.domain import Trade


class InMemoryFeed:
    """A feed whose exchange is the test: `push` trades, `push_raw` messages, `set_state`."""

    def __init__(self, exchange: str = "memory", sanity: SanityConfig | None = None) -> None:
        self.exchange = exchange
        self._router = StreamRouter(sanity=sanity)
        self._state = FeedState.STOPPED
        self._last_error: str | None = None
        self.subscribed_symbols: set[str] = set()  # what the "exchange" was asked for
        self._connections = 0

    async def start(self) -> None:
        self.set_state(FeedState.CONNECTED)

    async def stop(self) -> None:
        self.set_state(FeedState.STOPPED)

    async def subscribe(self, symbols: Iterable[str], consumer: FeedConsumer) -> Subscription:
        subscription = Subscription(normalize_symbols(symbols), consumer)
        self._router.add(subscription)
        self.subscribed_symbols |= subscription.symbols
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        for stream in self._router.remove(subscription):
            self.subscribed_symbols.discard(stream.split("@", 1)[0].upper())

    def status(self) -> FeedStatus:
        return FeedStatus(
            exchange=self.exchange,
            state=self._state,
            last_error=self._last_error,
            symbols=tuple(sorted(self.subscribed_symbols)),
        )

    def metrics(self) -> FeedMetrics:
        return self._router.snapshot()

    # -- the test's side -----------------------------------------------------------------

    def push(self, *trades: Trade) -> None:
        """Deliver trades as if they had arrived (only while connected, as live)."""
        for trade in trades:
            if self._state is FeedState.CONNECTED:
                self._router.metrics.messages += 1
                self._router.deliver(trade)

    def push_raw(self, raw: str | bytes) -> None:
        """Deliver a raw Binance combined-stream message, through the real parser."""
        if self._state is FeedState.CONNECTED:
            self._router.handle(raw, time.time_ns())

    def set_state(self, state: FeedState, error: str | None = None) -> None:
        """Move the fake connection; consumers hear of it as from a real feed."""
        metrics = self._router.metrics
        if state is FeedState.CONNECTED and self._state is not FeedState.CONNECTED:
            self._connections += 1
            if self._connections > 1:
                metrics.reconnects += 1
            metrics.link_up()
        elif state is not FeedState.CONNECTED:
            metrics.link_down()
        self._state = state
        self._last_error = error if error is not None else self._last_error
        self._router.notify_status(self.status())
