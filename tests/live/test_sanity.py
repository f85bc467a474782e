"""Hostile market data through the real parser and router (live/feeds/sanity.py): each case
of issue 14 on its own, then a property: whatever hostile messages are mixed into a valid
stream, the candles built are exactly those of the valid trades alone."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.feeds import (
    FeedStatus,
    Gap,
    InMemoryFeed,
    SanityConfig,
    StreamRouter,
    Subscription,
    SuspectCounts,
)
from live.replay import trade_message
from tradepipe.candles import CandleAggregator
from tradepipe.domain import Candle, Side, Trade

BASE_MS = 1_722_470_400_000  # 2024-08-01: well in the past of the local clock
DAY_MS = 86_400_000


class Collector:
    """A consumer keeping what it hears, and building 1 s candles with the kernel."""

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.gaps: list[Gap] = []
        self.order: list[str] = []
        self.aggregator = CandleAggregator("1s", "BTCUSDT")
        self.candles: list[Candle] = []

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)
        self.order.append(f"t{trade.trade_id}")
        closed = self.aggregator.add(trade)
        if closed is not None:
            self.candles.append(closed)

    def on_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        self.order.append("gap")

    def on_status(self, status: FeedStatus) -> None:
        pass

    def finish(self) -> list[Candle]:
        last = self.aggregator.flush()
        return self.candles + ([last] if last is not None else [])


def routed(sanity: SanityConfig | None = None) -> tuple[StreamRouter, Collector]:
    router = StreamRouter(sanity=sanity)
    collector = Collector()
    router.add(Subscription(frozenset({"BTCUSDT"}), collector))
    return router, collector


def trade(
    trade_id: int, time_ms: int | None = None, price: float = 60_000.0, quantity: float = 0.5
) -> Trade:
    at = BASE_MS + trade_id * 100 if time_ms is None else time_ms
    return Trade("BTCUSDT", at, price, quantity, Side.BUY, trade_id)


def send(router: StreamRouter, *trades: Trade) -> None:
    for item in trades:
        router.handle(trade_message(item), time.time_ns())


def ids(collector: Collector) -> list[int | None]:
    return [t.trade_id for t in collector.trades]


def suspects(router: StreamRouter, **expected: int) -> None:
    assert router.metrics.snapshot().suspects == SuspectCounts(**expected)


# -- trade ids ---------------------------------------------------------------------------


def test_an_id_far_ahead_is_held_and_dropped_when_the_next_trade_contradicts_it() -> None:
    router, collector = routed()
    forged = trade(50_000_000, trade(3).time_ms)
    send(router, trade(1), trade(2), forged, trade(3), trade(4), trade(5))
    assert ids(collector) == [1, 2, 3, 4, 5]  # the jump never became a floor
    assert collector.gaps == []
    metrics = router.snapshot()
    assert (metrics.trades, metrics.duplicates, metrics.gaps, metrics.held) == (5, 0, 0, 0)
    suspects(router, id_jump=1, rejected=1)


def test_an_id_jump_the_next_trade_confirms_is_a_gap_then_both_trades() -> None:
    router, collector = routed()
    send(router, trade(1), trade(2), trade(5_000_000, trade(3).time_ms))
    assert ids(collector) == [1, 2] and router.snapshot().held == 1
    assert list(router.held()) == ["BTCUSDT"]
    send(router, trade(5_000_001, trade(4).time_ms), trade(5_000_002, trade(5).time_ms))
    assert ids(collector) == [1, 2, 5_000_000, 5_000_001, 5_000_002]
    assert collector.gaps == [Gap("BTCUSDT", trade(2).time_ms, trade(3).time_ms, 2, 5_000_000)]
    assert collector.order[:4] == ["t1", "t2", "gap", "t5000000"]
    suspects(router, id_jump=1, confirmed=1)


def test_duplicates_are_found_in_a_bounded_window_and_older_ids_are_out_of_order() -> None:
    router, collector = routed()
    send(router, *(trade(i) for i in range(1, 10_001)))
    send(router, trade(9_999), trade(10_000), trade(6_000))  # inside the last 4096 ids
    send(router, trade(5_000))  # older than the window: out of order, dropped too
    send(router, trade(10_001))
    assert ids(collector) == [*range(1, 10_002)]
    assert router.snapshot().duplicates == 3
    suspects(router, out_of_order=1)


def test_a_small_hole_in_ids_is_a_gap_as_before() -> None:
    router, collector = routed()
    send(router, trade(1), trade(2), trade(40), trade(41))
    assert ids(collector) == [1, 2, 40, 41]
    assert collector.gaps == [Gap("BTCUSDT", trade(2).time_ms, trade(40).time_ms, 2, 40)]
    suspects(router)


def test_an_id_far_behind_after_a_confirmed_jump_heals_once_confirmed() -> None:
    """Two forged trades can confirm each other; the real stream, arriving again, wins back
    after two of its trades instead of being a 'duplicate' forever."""
    router, collector = routed()
    forged = (trade(90_000_000, trade(12).time_ms), trade(90_000_001, trade(12).time_ms))
    send(router, trade(10), trade(11), *forged, trade(12), trade(13), trade(14))
    assert ids(collector) == [10, 11, 90_000_000, 90_000_001, 12, 13, 14]
    suspects(router, id_jump=2, confirmed=2)


# -- times -------------------------------------------------------------------------------


@pytest.mark.parametrize("future_ms", [DAY_MS, 10**30])
def test_a_trade_in_the_future_of_the_local_clock_is_dropped(future_ms: int) -> None:
    router, collector = routed()
    now_ms = time.time_ns() // 1_000_000
    send(router, trade(1, now_ms - 1_000), trade(2, now_ms + future_ms), trade(3, now_ms - 900))
    assert ids(collector) == [1, 3]
    suspects(router, future_time=1)


def test_a_trade_far_ahead_of_the_previous_one_is_held_until_confirmed() -> None:
    router, collector = routed()
    send(router, trade(1), trade(2), trade(3, BASE_MS + DAY_MS), trade(3), trade(4))
    assert ids(collector) == [1, 2, 3, 4]
    assert collector.trades[2].time_ms == trade(3).time_ms  # the real trade 3, not the forged
    suspects(router, time_jump=1, rejected=1)
    # a real silence of an hour: held one trade, then both go out
    later = BASE_MS + 3_600_000
    send(router, trade(5, later), trade(6, later + 10))
    assert ids(collector) == [1, 2, 3, 4, 5, 6]
    suspects(router, time_jump=2, rejected=1, confirmed=1)


def test_a_trade_back_in_time_beyond_the_tolerance_is_dropped() -> None:
    router, collector = routed()
    send(router, trade(1, BASE_MS + 10_000), trade(2, BASE_MS + 9_500), trade(3, BASE_MS + 5_000))
    send(router, trade(4, BASE_MS + 10_100))
    assert ids(collector) == [1, 2, 4]  # half a second back is within the tolerance
    suspects(router, backward_time=1)


# -- prices and quantities ---------------------------------------------------------------


def test_an_absurd_price_is_held_and_dropped_when_the_next_trade_contradicts_it() -> None:
    router, collector = routed()
    send(router, trade(1), trade(2, price=1e12), trade(2), trade(3, price=60_010.0))
    assert [t.price for t in collector.trades] == [60_000.0, 60_000.0, 60_010.0]
    suspects(router, price_band=1, rejected=1)


def test_a_real_crash_is_held_one_trade_then_confirmed() -> None:
    router, collector = routed()
    send(router, trade(1), trade(2, price=40_000.0), trade(3, price=39_990.0))
    assert [t.price for t in collector.trades] == [60_000.0, 40_000.0, 39_990.0]
    suspects(router, price_band=1, confirmed=1)


def test_an_absurd_quantity_is_dropped() -> None:
    router, collector = routed()
    send(router, *(trade(i) for i in range(1, 5)), trade(5, quantity=1e30), trade(5))
    assert ids(collector) == [1, 2, 3, 4, 5]
    assert all(t.quantity == 0.5 for t in collector.trades)
    suspects(router, quantity=1)


@pytest.mark.parametrize("price", [math.nan, math.inf, 0.0, -1.0])
def test_non_finite_or_non_positive_values_of_trades_not_from_the_wire_are_dropped(
    price: float,
) -> None:
    """The kernel parser refuses these on the wire (parse errors); trades handed over as
    objects (the in-memory feed) get the same treatment from the screen."""
    router, collector = routed()
    router.deliver(trade(1))
    router.deliver(trade(2, price=price))
    router.deliver(trade(3, quantity=price))
    router.deliver(trade(2))
    assert ids(collector) == [1, 2]
    suspects(router, bad_value=2)


def test_the_in_memory_feed_has_the_same_checks(aio: Any) -> None:
    async def scenario() -> None:
        feed = InMemoryFeed()
        collector = Collector()
        await feed.subscribe("BTCUSDT", collector)
        await feed.start()
        feed.push(trade(1), trade(2, price=1e12), trade(2), trade(3))
        assert ids(collector) == [1, 2, 3]
        assert feed.metrics().suspects == SuspectCounts(price_band=1, rejected=1)

    aio.run(scenario())


# -- messages ----------------------------------------------------------------------------


def nested(depth: int) -> str:
    return '{"stream":"btcusdt@trade","data":' + '{"a":' * depth + "1" + "}" * depth + "}"


@pytest.mark.parametrize(
    "raw", [nested(10_000), "[" * 30_000 + "]" * 30_000], ids=["object", "array"]
)
def test_deeply_nested_json_is_that_messages_error_never_the_connections(raw: str) -> None:
    assert len(raw) < 64 * 1024
    with pytest.raises(RecursionError):
        json.loads(raw)  # what used to escape the parser and drop the connection
    router, collector = routed()
    send(router, trade(1))
    assert router.handle(raw, time.time_ns()) is None
    send(router, trade(2))
    assert ids(collector) == [1, 2]
    metrics = router.snapshot()
    assert (metrics.messages, metrics.message_errors, metrics.parse_errors) == (3, 1, 0)


def test_a_frame_over_the_bound_is_counted_oversize_and_not_parsed() -> None:
    router, _ = routed()
    padded = trade_message(trade(1)).replace('"M":true', '"M":true,"x":"' + "y" * 70_000 + '"')
    router.handle(padded, time.time_ns())
    send(router, trade(2))
    metrics = router.snapshot()
    assert (metrics.oversize, metrics.parse_errors, metrics.trades) == (1, 0, 1)
    small = StreamRouter(max_message_bytes=100)
    small.handle(trade_message(trade(1)), time.time_ns())
    assert small.snapshot().oversize == 1
    with pytest.raises(ValueError, match="max_message_bytes"):
        StreamRouter(max_message_bytes=0)


def test_well_formed_messages_of_kinds_the_feed_does_not_handle_are_counted() -> None:
    router, collector = routed()
    router.handle('{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}', 0)
    router.handle(trade_message(trade(1)).replace('"e":"trade"', '"e":"aggTrade"'), 0)
    assert router.snapshot().unhandled == 2 and collector.trades == []


def test_sanity_settings_are_checked() -> None:
    for bad in (
        {"price_band": 1.0},
        {"price_band": 0.0},
        {"max_future_seconds": math.inf},
        {"max_quantity_ratio": 1.0},
        {"duplicate_window": 2_000_000},
        {"max_id_jump": -1},
    ):
        with pytest.raises(ValueError, match="feed sanity"):
            SanityConfig(**bad)  # type: ignore[arg-type]


# -- the property ------------------------------------------------------------------------


def independent_candles(trades: Iterable[Trade]) -> list[tuple[Any, ...]]:
    """1 s OHLCV of `trades` in plain Python, no tradepipe code."""
    seconds: dict[int, list[Trade]] = {}
    for item in trades:
        seconds.setdefault(item.time_ms // 1000 * 1000, []).append(item)
    rows = []
    for start in sorted(seconds):
        group = seconds[start]
        prices = [t.price for t in group]
        rows.append(
            (
                start,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                math.fsum(t.quantity for t in group),
                math.fsum(t.quantity for t in group if t.taker_side is Side.BUY),
                len(group),
            )
        )
    return rows


def as_rows(candles: Iterable[Candle]) -> list[tuple[Any, ...]]:
    return [
        (c.start_ms, c.open, c.high, c.low, c.close, c.volume, c.taker_buy_volume, c.trade_count)
        for c in candles
    ]


@st.composite
def valid_trades(draw: st.DrawFn) -> list[Trade]:
    count = draw(st.integers(1, 40))
    first_id = draw(st.integers(1, 10**9))
    at, price = BASE_MS + draw(st.integers(0, 10**6)), draw(st.floats(0.01, 1e5))
    trades = []
    for index in range(count):
        at += draw(st.integers(0, 1_500))
        price = round(price * draw(st.floats(0.99, 1.01)), 6)
        quantity = round(draw(st.floats(0.001, 10.0)), 6)
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        trades.append(Trade("BTCUSDT", at, price, quantity, side, first_id + index))
    return trades


HOSTILE_KINDS = (
    "duplicate",
    "id_ahead",
    "id_behind",
    "future",
    "far_future",
    "time_jump",
    "backward",
    "price_high",
    "price_low",
    "quantity",
    "malformed",
    "nested",
    "oversize",
    "other_kind",
)


def hostile(kind: str, serial: int, sent: list[Trade], now_ms: int) -> str:
    """A hostile message, forged from the last valid trade sent. `serial` keeps two forged
    trades from confirming each other (their ids, times and prices are far apart)."""
    last = sent[-1]
    upcoming = last.trade_id + 1 if last.trade_id is not None else 0
    forged = replace(last, trade_id=upcoming)
    if kind == "duplicate":
        return trade_message(sent[-1 - serial % len(sent)])
    if kind == "id_ahead":
        return trade_message(replace(last, trade_id=upcoming + 10**7 * (serial + 1)))
    if kind == "id_behind":
        return trade_message(replace(last, trade_id=upcoming - 10**7 * (serial + 1)))
    if kind == "future":
        return trade_message(replace(forged, time_ms=now_ms + DAY_MS * (serial + 1)))
    if kind == "far_future":
        return trade_message(replace(forged, time_ms=10**30 + serial))
    if kind == "time_jump":
        return trade_message(replace(forged, time_ms=last.time_ms + DAY_MS * (serial + 1)))
    if kind == "backward":
        return trade_message(replace(forged, time_ms=last.time_ms - 5_000))
    if kind == "price_high":
        return trade_message(replace(forged, price=1e12 * (serial + 1)))
    if kind == "price_low":
        return trade_message(replace(forged, price=last.price / 10 / (serial + 2)))
    if kind == "quantity":
        return trade_message(replace(forged, quantity=1e30))
    if kind == "malformed":
        return trade_message(forged)[: 20 + serial % 50]
    if kind == "nested":
        return nested(5_000)
    if kind == "oversize":
        return '{"stream":"btcusdt@trade","data":{"pad":"' + "x" * 70_000 + '"}}'
    return trade_message(forged).replace('"e":"trade"', '"e":"aggTrade"')


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid=valid_trades(),
    plan=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(HOSTILE_KINDS)), max_size=30),
)
def test_mixed_hostile_messages_leave_exactly_the_candles_of_the_valid_trades(
    valid: list[Trade], plan: list[tuple[int, str]]
) -> None:
    router, collector = routed()
    now_ms = time.time_ns() // 1_000_000
    after: dict[int, list[str]] = {}
    for position, kind in plan:
        after.setdefault(position % len(valid), []).append(kind)
    serial = 0
    sent: list[Trade] = []
    for index, item in enumerate(valid):
        router.handle(trade_message(item), time.time_ns())
        sent.append(item)
        for kind in after.get(index, []):  # hostile ones only after a first valid trade
            router.handle(hostile(kind, serial, sent, now_ms), time.time_ns())
            serial += 1
    assert collector.trades == valid
    assert as_rows(collector.finish()) == independent_candles(valid)
    assert collector.gaps == []
    metrics = router.snapshot()
    assert metrics.trades == len(valid)
    assert metrics.messages == len(valid) + serial
