"""The feed's message path without a socket: parsing, counting, duplicates, gaps, isolation
from consumers that fail, and the in-memory Feed double that shares it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from live.feeds import (
    BinanceFeed,
    CallbackConsumer,
    Feed,
    FeedConsumer,
    FeedState,
    FeedStatus,
    Gap,
    InMemoryFeed,
    StreamRouter,
    Subscription,
    TradeQueue,
)
from live.feeds.protocol import normalize_symbols
from live.feeds.router import parse_reply
from live.replay import trade_message
from tradepipe.domain import Side, Trade

Aio = Any  # conftest.Aio (conftest modules are not importable by name)


def trade(trade_id: int, time_ms: int = 1_000, symbol: str = "BTCUSDT") -> Trade:
    return Trade(symbol, time_ms, 100.0 + trade_id, 0.5, Side.BUY, trade_id)


class Recorder:
    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.gaps: list[Gap] = []
        self.statuses: list[FeedStatus] = []

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)

    def on_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    def on_status(self, status: FeedStatus) -> None:
        self.statuses.append(status)


def routed(*symbols: str) -> tuple[StreamRouter, Recorder]:
    router = StreamRouter()
    recorder = Recorder()
    router.add(Subscription(frozenset(symbols or ("BTCUSDT",)), recorder))
    return router, recorder


def message(data: dict[str, Any], stream: str = "btcusdt@trade") -> str:
    return json.dumps({"stream": stream, "data": data})


GOOD = {"e": "trade", "E": 2_000, "s": "BTCUSDT", "t": 7, "p": "61837.63000000",
        "q": "0.02000000", "T": 1_999, "m": True, "M": True}  # fmt: skip


def test_a_binance_trade_message_becomes_a_trade_and_its_latency_is_measured() -> None:
    router, recorder = routed()
    assert router.handle(message(GOOD), receive_ns=2_005 * 1_000_000) is None
    assert recorder.trades == [Trade("BTCUSDT", 1_999, 61837.63, 0.02, Side.SELL, 7)]
    metrics = router.metrics.snapshot()
    assert (metrics.messages, metrics.trades, metrics.parse_errors) == (1, 1, 0)
    assert metrics.latency.samples == 1 and metrics.latency.p50_ms == pytest.approx(5.0)


@pytest.mark.parametrize(
    "raw",
    [
        "garbage",
        "",
        "{not json",
        "[1, 2, 3]",
        "null",
        '{"stream": 5, "data": {}}',
        '{"stream": "btcusdt@trade", "data": "text"}',
        message({**GOOD, "p": "not a price"}),
        message({**GOOD, "T": None}),
        message({**GOOD, "m": "true"}),  # a string where Binance sends a boolean
        message({key: value for key, value in GOOD.items() if key != "q"}),
        message({**GOOD, "s": "ETHUSDT"}),  # a trade of another symbol on this stream
        message({**GOOD, "e": 5}),
        message({**GOOD, "p": "NaN"}),  # the kernel parser takes these three for numbers
        message({**GOOD, "p": "-61837.63"}),
        message({**GOOD, "q": "inf"}),
        b'{"stream":"btcusdt@trade","data":{}}',  # a binary frame: Binance sends text
        b"\x00\xff\xfe",
    ],
)
def test_malformed_messages_are_counted_and_skipped(raw: str | bytes) -> None:
    router, recorder = routed()
    router.handle(raw, 0)
    router.handle(message(GOOD), 0)  # and the feed goes on
    metrics = router.metrics.snapshot()
    assert (metrics.messages, metrics.parse_errors, metrics.trades) == (2, 1, 1)
    assert len(recorder.trades) == 1


def test_well_formed_messages_the_feed_does_not_handle_are_counted_apart() -> None:
    router, recorder = routed()
    router.handle(message({**GOOD, "e": "aggTrade"}), 0)  # unknown event type
    router.handle(message(GOOD, stream="btcusdt@bookTicker"), 0)  # a stream not subscribed
    router.handle(message({**GOOD, "s": "ETHUSDT"}, stream="ethusdt@trade"), 0)
    metrics = router.metrics.snapshot()
    assert (metrics.unhandled, metrics.parse_errors, metrics.trades) == (3, 0, 0)
    assert recorder.trades == []


def test_replies_in_both_of_binances_shapes() -> None:
    router, _ = routed()
    assert router.handle('{"result":null,"id":1}', 0) == parse_reply('{"result":null,"id":1}')
    ok = parse_reply('{"result":null,"id":1}')
    assert ok is not None and (ok.id, ok.error) == (1, None)
    nested = parse_reply('{"error":{"code":2,"msg":"Invalid request"},"id":2}')
    flat = parse_reply('{"code":2,"msg":"Invalid request","id":3}')
    assert nested is not None and nested.error == "code 2: Invalid request"
    assert flat is not None and flat.error == "code 2: Invalid request" and flat.id == 3
    assert parse_reply('{"id":"x","result":null}') is None
    assert router.metrics.snapshot().replies == 1


def test_duplicates_are_dropped_and_holes_in_trade_ids_become_gaps_before_the_trade() -> None:
    router, recorder = routed()
    order: list[str] = []
    router.add(
        Subscription(
            frozenset({"BTCUSDT"}),
            CallbackConsumer(
                lambda t: order.append(f"t{t.trade_id}"), lambda g: order.append("gap")
            ),
        )
    )
    for trade_id, time_ms in (
        (1, 1_000),
        (2, 1_100),
        (2, 1_100),
        (1, 1_000),
        (6, 4_200),
        (7, 4_300),
    ):
        router.deliver(trade(trade_id, time_ms))
    assert [t.trade_id for t in recorder.trades] == [1, 2, 6, 7]
    assert recorder.gaps == [Gap("BTCUSDT", 1_100, 4_200, 2, 6)]
    assert recorder.gaps[0].missing_trades == 3
    assert order == ["t1", "t2", "gap", "t6", "t7"]
    metrics = router.metrics.snapshot()
    assert (metrics.duplicates, metrics.gaps, metrics.trades) == (2, 1, 4)


def test_a_failing_consumer_is_counted_and_does_not_starve_the_others() -> None:
    router, recorder = routed()

    def explode(_: Trade) -> None:
        raise RuntimeError("bot bug")

    router.add(Subscription(frozenset({"BTCUSDT"}), CallbackConsumer(explode)))
    router.handle(message(GOOD), 0)
    assert len(recorder.trades) == 1
    assert router.metrics.snapshot().consumer_errors == 1


def test_one_consumer_with_two_subscriptions_of_a_symbol_gets_each_trade_once() -> None:
    router, recorder = routed()
    second = Subscription(frozenset({"BTCUSDT", "ETHUSDT"}), recorder)
    assert router.add(second) == {"ethusdt@trade"}
    router.deliver(trade(1))
    assert len(recorder.trades) == 1
    assert router.remove(second) == {"ethusdt@trade"}
    assert router.streams() == {"btcusdt@trade"}


def test_in_memory_feed_is_a_feed_with_the_same_rules(aio: Aio) -> None:
    async def scenario() -> None:
        feed = InMemoryFeed()
        queue = TradeQueue()
        recorder = Recorder()
        subscription = await feed.subscribe("btcusdt", queue)
        await feed.subscribe(["BTCUSDT", "ETHUSDT"], recorder)
        await feed.start()
        feed.push(trade(1), trade(2), trade(5, symbol="ETHUSDT"), trade(4))
        feed.push_raw(trade_message(trade(5)))
        feed.push_raw("garbage")
        assert [await queue.get() for _ in range(4)] == [
            trade(1),
            trade(2),
            Gap("BTCUSDT", 1_000, 1_000, 2, 4),
            trade(4),
        ]
        assert queue.backlog == 1
        await feed.unsubscribe(subscription)
        assert feed.status().symbols == ("BTCUSDT", "ETHUSDT")  # the recorder still wants both
        feed.set_state(FeedState.BACKING_OFF, "link down")
        feed.push(trade(9))  # lost: not connected
        feed.set_state(FeedState.CONNECTED)
        assert [s.state for s in recorder.statuses][-2:] == ["backing-off", "connected"]
        metrics = feed.metrics()
        assert (metrics.trades, metrics.parse_errors, metrics.reconnects) == (5, 1, 1)
        assert feed.status().last_error == "link down"
        await feed.stop()

    aio.run(scenario())


def test_symbols_are_binance_ids_and_an_empty_latency_window_is_nan() -> None:
    assert normalize_symbols("btcusdt") == {"BTCUSDT"}
    for bad in (["BTC/USDT"], ["btc usdt"], [""], []):
        with pytest.raises(ValueError, match="symbol"):
            normalize_symbols(bad)
    assert math.isnan(StreamRouter().metrics.snapshot().latency.p50_ms)


def test_the_adapter_and_the_double_are_both_feeds() -> None:
    feeds: list[Feed] = [BinanceFeed(), InMemoryFeed()]  # mypy checks the protocol
    assert [feed.status().state for feed in feeds] == [FeedState.STOPPED] * 2
    assert [feed.exchange for feed in feeds] == ["binance", "memory"]
    consumers: list[FeedConsumer] = [Recorder(), TradeQueue(), CallbackConsumer(print)]
    assert all(isinstance(c, FeedConsumer) for c in consumers)
