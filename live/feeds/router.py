"""From raw combined-stream messages to trades in the hands of their consumers.

The hot path of every feed: one `handle` per WebSocket frame, no awaiting, no allocation
beyond the parsed JSON and the Trade. It parses with the kernel's Binance parsers (the
same code that reads captures), keeps the counters of `FeedMetrics`, screens every trade
(duplicates, id and time jumps, prices and quantities out of band: `live.feeds.sanity`),
turns holes in Binance's consecutive trade ids into `Gap` events, and shields the feed
from consumers that raise. Whatever raises while one frame is handled (deeply nested JSON
raises RecursionError) is that frame's error, counted: never the connection's. Frames over
`max_message_bytes` characters are counted as oversize and not parsed. Adapters own the
socket; the router owns the meaning.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from live.feeds.protocol import (
    FeedConsumer,
    FeedMetrics,
    FeedStatus,
    Gap,
    LatencySummary,
    Subscription,
)
from live.feeds.sanity import SanityConfig, SuspectCounter, TradeScreen
from tradepipe.binance import (
    MalformedMessageError,
    decode_trade_message,
    parse_combined_message,
    parse_trade,
)
from tradepipe.domain import Trade

log = logging.getLogger(__name__)

LATENCY_WINDOW = 4096  # recent samples kept for the percentiles
MAX_MESSAGE_BYTES = 64 * 1024  # a Binance trade frame is ~200 bytes


def trade_stream(symbol: str) -> str:
    """Binance's stream name of a symbol's trades: "BTCUSDT" -> "btcusdt@trade"."""
    return f"{symbol.lower()}@trade"


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a SUBSCRIBE/UNSUBSCRIBE request: `{"result": null, "id": 1}`, or an
    error, which Binance has sent both as `{"error": {"code", "msg"}, "id"}` and as
    `{"code", "msg", "id"}`."""

    id: int | None
    result: Any
    error: str | None


def parse_reply(raw: str) -> Reply | None:
    """A method reply, or None when the text is not one (then it is malformed)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict) or "id" not in message:
        return None
    request_id = message["id"]
    if request_id is not None and not isinstance(request_id, int):
        return None
    error = message.get("error")
    if isinstance(error, dict):
        return Reply(request_id, None, f"code {error.get('code')}: {error.get('msg')}")
    if "code" in message and "msg" in message:
        return Reply(request_id, None, f"code {message['code']}: {message['msg']}")
    if "result" in message:
        return Reply(request_id, message["result"], None)
    return None


class MetricsRecorder:
    """Mutable counters behind `FeedMetrics` (plain attributes: the hot path increments
    them directly)."""

    __slots__ = (
        "connected_since",
        "connected_total",
        "consumer_errors",
        "duplicates",
        "gaps",
        "latencies",
        "latency_max",
        "message_errors",
        "messages",
        "oversize",
        "parse_errors",
        "reconnects",
        "replies",
        "suspects",
        "trades",
        "unhandled",
    )

    def __init__(self) -> None:
        self.messages = self.trades = self.parse_errors = self.unhandled = self.replies = 0
        self.duplicates = self.gaps = self.consumer_errors = self.reconnects = 0
        self.message_errors = self.oversize = 0
        self.suspects = SuspectCounter()
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.latency_max = -math.inf
        self.connected_since: float | None = None  # time.monotonic() of the current link
        self.connected_total = 0.0

    def link_up(self) -> None:
        self.connected_since = time.monotonic()

    def link_down(self) -> None:
        if self.connected_since is not None:
            self.connected_total += time.monotonic() - self.connected_since
            self.connected_since = None

    def snapshot(self, held: int = 0) -> FeedMetrics:
        uptime = 0.0 if self.connected_since is None else time.monotonic() - self.connected_since
        recent = sorted(self.latencies)
        if recent:
            latency = LatencySummary(
                len(recent),
                recent[len(recent) // 2],
                recent[min(len(recent) - 1, int(len(recent) * 0.99))],
                self.latency_max,
            )
        else:
            latency = LatencySummary(0, math.nan, math.nan, math.nan)
        return FeedMetrics(
            messages=self.messages,
            trades=self.trades,
            parse_errors=self.parse_errors,
            unhandled=self.unhandled,
            replies=self.replies,
            duplicates=self.duplicates,
            gaps=self.gaps,
            consumer_errors=self.consumer_errors,
            message_errors=self.message_errors,
            oversize=self.oversize,
            suspects=self.suspects.snapshot(),
            held=held,
            reconnects=self.reconnects,
            uptime_seconds=uptime,
            connected_seconds=self.connected_total + uptime,
            latency=latency,
        )


class _Route(TradeScreen):
    """One symbol's consumers, and its recent trades as the screen keeps them."""

    __slots__ = ("handlers", "last_receive_ns", "since_ns", "subscriptions")

    def __init__(
        self, symbol: str, since_ns: int, config: SanityConfig, counter: SuspectCounter
    ) -> None:
        super().__init__(symbol, config, counter)
        self.subscriptions: list[Subscription] = []
        # each consumer once, even when it holds several subscriptions of the symbol
        self.handlers: tuple[Callable[[Trade], None], ...] = ()
        self.since_ns = since_ns
        self.last_receive_ns: int | None = None  # of its last trade delivered


class StreamRouter:
    """Routes the trade streams of subscribed symbols to their consumers."""

    def __init__(
        self,
        metrics: MetricsRecorder | None = None,
        sanity: SanityConfig | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be >= 1: {max_message_bytes}")
        self.metrics = metrics if metrics is not None else MetricsRecorder()
        self.sanity = sanity or SanityConfig()
        self.max_message_bytes = max_message_bytes
        self._routes: dict[str, _Route] = {}  # by stream name, as it arrives on the wire
        self._subscriptions: list[Subscription] = []

    # -- subscriptions -------------------------------------------------------------------

    def add(self, subscription: Subscription) -> set[str]:
        """Register a subscription; returns the stream names that are new."""
        self._subscriptions.append(subscription)
        added = set()
        for symbol in subscription.symbols:
            stream = trade_stream(symbol)
            route = self._routes.get(stream)
            if route is None:
                route = self._routes[stream] = _Route(
                    symbol, time.monotonic_ns(), self.sanity, self.metrics.suspects
                )
                added.add(stream)
            route.subscriptions.append(subscription)
            route.handlers = _unique_handlers(route.subscriptions)
        return added

    def remove(self, subscription: Subscription) -> set[str]:
        """Forget a subscription; returns the stream names nobody wants any more. A symbol
        subscribed again later starts afresh (no Gap for the time nobody listened)."""
        if subscription not in self._subscriptions:
            return set()
        self._subscriptions.remove(subscription)
        removed = set()
        for symbol in subscription.symbols:
            stream = trade_stream(symbol)
            route = self._routes[stream]
            route.subscriptions.remove(subscription)
            route.handlers = _unique_handlers(route.subscriptions)
            if not route.subscriptions:
                del self._routes[stream]
                removed.add(stream)
        return removed

    def streams(self) -> set[str]:
        return set(self._routes)

    def symbol_of(self, stream: str) -> str | None:
        route = self._routes.get(stream)
        return None if route is None else route.symbol

    def consumers(self) -> list[FeedConsumer]:
        """Every distinct consumer, in subscription order."""
        seen: dict[int, FeedConsumer] = {}
        for subscription in self._subscriptions:
            seen.setdefault(id(subscription.consumer), subscription.consumer)
        return list(seen.values())

    def silent_symbols(self, threshold_ns: int, connected_since_ns: int | None) -> list[str]:
        """Symbols without a trade delivered for `threshold_ns`, counted from the later of
        their subscription, their last trade and the connection's start (trades dropped
        or held as suspect do not count: a symbol that sends only those is silent)."""
        if connected_since_ns is None:
            return []
        now = time.monotonic_ns()
        silent = []
        for route in self._routes.values():
            heard = route.last_receive_ns or 0
            if now - max(heard, route.since_ns, connected_since_ns) > threshold_ns:
                silent.append(route.symbol)
        return sorted(silent)

    # -- the hot path --------------------------------------------------------------------

    def handle(self, raw: str | bytes, receive_ns: int) -> Reply | None:
        """One frame as received (`receive_ns`: the local wall clock, time.time_ns).
        Returns the reply when the frame answers a request. Never raises."""
        metrics = self.metrics
        metrics.messages += 1
        if not isinstance(raw, str):  # Binance sends text frames only
            metrics.parse_errors += 1
            return None
        if len(raw) > self.max_message_bytes:
            metrics.oversize += 1
            log.debug("feed: oversize message (%d characters) skipped", len(raw))
            return None
        # one try around the whole frame: free in Python 3.11 until something raises
        try:
            decoded = decode_trade_message(raw)
            if decoded is None:  # not a well-formed trade: the parsers say what it is
                return self._handle_other(raw, receive_ns)
            stream, trade, event_ms = decoded
            route = self._routes.get(stream)
            if route is None:
                metrics.unhandled += 1
                return None
            self._accept(route, stream, trade, event_ms, raw, receive_ns)
            return None
        except Exception as error:  # this message's error, never the connection's
            metrics.message_errors += 1
            log.debug("feed: message failed (%s): %.200s", type(error).__name__, raw)
            return None

    def _handle_other(self, raw: str, receive_ns: int) -> Reply | None:
        """A frame the hot path's decoder refused: a reply, another event, malformed, or a
        trade in a form Binance does not send but the parsers take (an `E` that is not an
        integer, say): that one is delivered like any other."""
        metrics = self.metrics
        try:
            stream, data = parse_combined_message(raw)
        except MalformedMessageError:
            reply = parse_reply(raw)  # rare: parse again only when it is not a stream message
            if reply is None:
                metrics.parse_errors += 1
                log.debug("feed: malformed message skipped: %.200s", raw)
            else:
                metrics.replies += 1
            return reply
        route = self._routes.get(stream)
        if route is None:
            metrics.unhandled += 1
            return None
        try:
            trade = parse_trade(data)
        except MalformedMessageError as error:
            if isinstance(data.get("e"), str) and data["e"] != "trade":
                metrics.unhandled += 1  # another event type on the stream: well formed
            else:
                metrics.parse_errors += 1
                log.debug("feed: malformed trade skipped (%s): %.200s", error, raw)
            return None
        event_ms = data.get("E")
        self._accept(
            route, stream, trade, event_ms if type(event_ms) is int else None, raw, receive_ns
        )
        return None

    def _accept(
        self,
        route: _Route,
        stream: str,
        trade: Trade,
        event_ms: int | None,
        raw: str,
        receive_ns: int,
    ) -> None:
        metrics = self.metrics
        if trade.symbol != route.symbol:
            metrics.parse_errors += 1
            log.debug("feed: trade of another symbol on %s skipped: %.200s", stream, raw)
            return
        if event_ms is not None:
            latency = receive_ns / 1e6 - event_ms
            metrics.latencies.append(latency)
            if latency > metrics.latency_max:
                metrics.latency_max = latency
        self._deliver(route, trade, receive_ns)

    def deliver(self, trade: Trade) -> bool:
        """Hand a trade that did not come as a message (an in-memory feed) to the consumers
        of its symbol, with the same checks, duplicate and gap rules. False if nobody
        wants it."""
        route = self._routes.get(trade_stream(trade.symbol))
        if route is None:
            self.metrics.unhandled += 1
            return False
        self._deliver(route, trade, time.time_ns())
        return True

    def _deliver(self, route: _Route, trade: Trade, receive_ns: int) -> None:
        # The common case inline: the next id, price and quantity in their bands, and a
        # time in the current millisecond or a small step forward (`advance` checks it).
        if (
            trade.trade_id == route.next_id
            and route.price_low <= trade.price <= route.price_high
            and 0.0 < trade.quantity <= route.quantity_limit
            and (
                route.earliest_ms <= trade.time_ms <= route.last_ms
                or route.advance(trade, receive_ns)
            )
        ):
            route.next_id += 1
            route.previous = trade
            route.last_receive_ns = time.monotonic_ns()
            metrics = self.metrics
            metrics.trades += 1
            for handler in route.handlers:  # as _hand_out, inline: the hot path
                try:
                    handler(trade)
                except Exception:
                    metrics.consumer_errors += 1
                    log.exception("feed consumer %r failed on a trade", handler)
            return
        events = route.screen(trade, receive_ns)
        if events is None:
            self.metrics.duplicates += 1
            return
        for event in events:
            if isinstance(event, Gap):
                self.metrics.gaps += 1
                self._call(route.subscriptions, partial(_announce_gap, event))
            else:
                self._hand_out(route, event)

    def _hand_out(self, route: _Route, trade: Trade) -> None:
        metrics = self.metrics
        route.last_receive_ns = time.monotonic_ns()
        metrics.trades += 1
        for handler in route.handlers:
            try:
                handler(trade)
            except Exception:
                metrics.consumer_errors += 1
                log.exception("feed consumer %r failed on a trade", handler)

    def snapshot(self) -> FeedMetrics:
        """The counters now, with the trades held for confirmation."""
        return self.metrics.snapshot(held=sum(r.held is not None for r in self._routes.values()))

    def held(self) -> dict[str, Trade]:
        """Trades held for confirmation, by symbol (at most one each)."""
        return {r.symbol: r.held for r in self._routes.values() if r.held is not None}

    def notify_status(self, status: FeedStatus) -> None:
        self._call(self._subscriptions, lambda consumer: consumer.on_status(status))

    def _call(
        self, subscriptions: Iterable[Subscription], action: Callable[[FeedConsumer], None]
    ) -> None:
        done: set[int] = set()
        for subscription in list(subscriptions):
            consumer = subscription.consumer
            if id(consumer) in done:
                continue
            done.add(id(consumer))
            try:
                action(consumer)
            except Exception:
                self.metrics.consumer_errors += 1
                log.exception("feed consumer %r failed", consumer)


def _announce_gap(gap: Gap, consumer: FeedConsumer) -> None:
    consumer.on_gap(gap)


def _unique_handlers(subscriptions: list[Subscription]) -> tuple[Callable[[Trade], None], ...]:
    consumers: dict[int, FeedConsumer] = {}
    for subscription in subscriptions:
        consumers.setdefault(id(subscription.consumer), subscription.consumer)
    return tuple(consumer.on_trade for consumer in consumers.values())
