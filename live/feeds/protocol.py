"""The `Feed` seam: what the engine needs from a market-data connection, and nothing more.

One feed serves every bot of one exchange, so delivery is a synchronous callback per
consumer (`FeedConsumer.on_trade`), called once per trade from the feed's read loop: one
parse per message, then a loop over the consumers of that symbol. No queue or task per bot;
a consumer that needs to await wraps itself in `TradeQueue` (an async iterator).

Trades of one symbol arrive in exchange order, at most once. When the feed knows trades
were lost (a reconnect, a hole in Binance's consecutive trade ids) it says so with a `Gap`
before the first trade after the hole, so candles can be repaired (see `live.feeds.candles`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from tradepipe.domain import Trade


class FeedState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKING_OFF = "backing-off"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Where the connection stands, for health checks and the dashboard.

    `attempt` counts connection attempts that failed in a row (0 once connected);
    `retry_in_seconds` is the current backoff delay. `rejected` are symbols the exchange
    refused with an error reply; `silent` are subscribed symbols that sent nothing for
    longer than the feed's silence threshold while connected (Binance answers a subscribe
    to an unknown symbol with success, then sends nothing: silence is the only sign).
    """

    exchange: str
    state: FeedState
    last_error: str | None = None
    attempt: int = 0
    retry_in_seconds: float | None = None
    symbols: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Exchange event time `E` to local receive time over recent trades, in ms.

    Negative values are real: they are the local clock running behind the exchange's.
    """

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class SuspectCounts:
    """Suspect trades since the feed was created, by reason. Dropped: `bad_value`,
    `future_time`, `backward_time`, `quantity`, `out_of_order` (duplicates are counted in
    `FeedMetrics.duplicates`). Held: `id_jump`, `time_jump`, `price_band`; each held trade
    then ends `confirmed` (delivered) or `rejected` (dropped)."""

    bad_value: int = 0
    future_time: int = 0
    backward_time: int = 0
    quantity: int = 0
    out_of_order: int = 0
    id_jump: int = 0
    time_jump: int = 0
    price_band: int = 0
    confirmed: int = 0
    rejected: int = 0

    @property
    def dropped(self) -> int:
        """Trades that never reached a consumer (rejected held ones included)."""
        return (
            self.bad_value
            + self.future_time
            + self.backward_time
            + self.quantity
            + self.out_of_order
            + self.rejected
        )


@dataclass(frozen=True, slots=True)
class FeedMetrics:
    """Counters since the feed was created (a snapshot: safe to keep and compare).

    `messages` counts every frame received; each is a delivered trade, a parse error, a
    reply to a subscribe request, or `unhandled` (well formed, but not a trade of a
    subscribed symbol: another event type, or a stream just unsubscribed), `oversize`
    (longer than the router's bound, not parsed) or a `message_errors` (handling it
    raised: counted, the connection stays). `duplicates` are trades whose id was
    delivered already (within the recent window, see `live.feeds.sanity`); `suspects`
    counts the other trades dropped or held by the feed's checks, by reason.
    `reconnects` counts connections opened after the first; `uptime_seconds` is the age of
    the current connection (0 when down), `connected_seconds` the total over all of them.
    """

    messages: int = 0
    trades: int = 0
    parse_errors: int = 0
    unhandled: int = 0
    replies: int = 0
    duplicates: int = 0
    gaps: int = 0
    consumer_errors: int = 0
    message_errors: int = 0
    oversize: int = 0
    suspects: SuspectCounts = field(default_factory=SuspectCounts)
    held: int = 0  # trades held for confirmation right now (at most one per symbol)
    reconnects: int = 0
    uptime_seconds: float = 0.0
    connected_seconds: float = 0.0
    latency: LatencySummary = field(default_factory=lambda: LatencySummary(0, 0.0, 0.0, 0.0))


@dataclass(frozen=True, slots=True)
class Gap:
    """Trades of `symbol` after `last_trade_id` (at `from_ms`) and before `next_trade_id`
    (at `to_ms`) were not delivered. Emitted just before the trade `next_trade_id`.

    The missing trades lie in [from_ms, to_ms] (both ends inclusive: trades share ms).
    """

    symbol: str
    from_ms: int
    to_ms: int
    last_trade_id: int
    next_trade_id: int

    @property
    def missing_trades(self) -> int:
        return self.next_trade_id - self.last_trade_id - 1


@runtime_checkable
class FeedConsumer(Protocol):
    """Receives what a feed delivers. Called from the feed's read loop: return quickly and
    never block; an exception is counted (`consumer_errors`), logged and does not stop the
    feed or the other consumers."""

    def on_trade(self, trade: Trade) -> None: ...

    def on_gap(self, gap: Gap) -> None: ...

    def on_status(self, status: FeedStatus) -> None: ...


_subscription_ids = itertools.count(1)


@dataclass(frozen=True, slots=True, eq=False)
class Subscription:
    """A consumer's interest in some symbols (Binance ids, upper case: "BTCUSDT").
    The handle to pass to `Feed.unsubscribe`."""

    symbols: frozenset[str]
    consumer: FeedConsumer
    id: int = field(default_factory=lambda: next(_subscription_ids))


class Feed(Protocol):
    """A market-data connection of one exchange, shared by every consumer.

    `start` returns at once and connects in the background (status says how it goes);
    `subscribe`/`unsubscribe` work in any state and take effect on the connection as soon
    as it is up; `stop` closes everything and is idempotent.
    """

    @property
    def exchange(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, symbols: Iterable[str], consumer: FeedConsumer) -> Subscription: ...

    async def unsubscribe(self, subscription: Subscription) -> None: ...

    def status(self) -> FeedStatus: ...

    def metrics(self) -> FeedMetrics: ...


def normalize_symbol(symbol: str) -> str:
    """A Binance symbol id ("btcusdt" -> "BTCUSDT"); refuses unified names like BTC/USDT."""
    cleaned = symbol.strip().upper()
    if not cleaned or not cleaned.isalnum() or not cleaned.isascii():
        raise ValueError(
            f"symbol {symbol!r}: name it as the exchange does, letters and digits only, "
            "e.g. BTCUSDT (not BTC/USDT)"
        )
    return cleaned


def normalize_symbols(symbols: Iterable[str]) -> frozenset[str]:
    if isinstance(symbols, str):  # a lone "BTCUSDT" is one symbol, not seven letters
        symbols = [symbols]
    normalized = frozenset(normalize_symbol(symbol) for symbol in symbols)
    if not normalized:
        raise ValueError("subscribe needs at least one symbol")
    return normalized


class CallbackConsumer:
    """A consumer from plain functions: the trade callback, and optionally gap and status."""

    def __init__(
        self,
        on_trade: Callable[[Trade], None],
        on_gap: Callable[[Gap], None] | None = None,
        on_status: Callable[[FeedStatus], None] | None = None,
    ) -> None:
        self._trade = on_trade
        self._gap = on_gap
        self._status = on_status

    def on_trade(self, trade: Trade) -> None:
        self._trade(trade)

    def on_gap(self, gap: Gap) -> None:
        if self._gap is not None:
            self._gap(gap)

    def on_status(self, status: FeedStatus) -> None:
        if self._status is not None:
            self._status(status)


FeedEvent = Trade | Gap


class TradeQueue:
    """A consumer that is an async iterator of trades and gaps, for code that awaits.

    Unbounded on purpose: the feed must never wait for a consumer; a consumer that falls
    behind shows as a growing `backlog`. Status changes are kept as `last_status`.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self.last_status: FeedStatus | None = None

    def on_trade(self, trade: Trade) -> None:
        self._queue.put_nowait(trade)

    def on_gap(self, gap: Gap) -> None:
        self._queue.put_nowait(gap)

    def on_status(self, status: FeedStatus) -> None:
        self.last_status = status

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def get(self) -> FeedEvent:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[FeedEvent]:
        return self

    async def __anext__(self) -> FeedEvent:
        return await self._queue.get()
