"""The native Binance adapter against real WebSocket servers on loopback: the replay server
(the real capture and the synthetic market) and small hostile servers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from websockets.asyncio.server import ServerConnection, serve

from live.feeds import (
    BinanceFeed,
    BinanceFeedConfig,
    BinanceRestBackfill,
    CallbackConsumer,
    FeedState,
    Gap,
    HealingConfig,
    SecondCandles,
    TradeQueue,
)
from live.replay import (
    CaptureSource,
    ReplayMessage,
    ReplayServer,
    SyntheticSource,
    trade_message,
)
from tradepipe.candles import (
    CANDLE_COLUMNS,
    CandleAggregator,
    candles_from_trades,
    candles_to_frame,
)
from tradepipe.domain import Candle, Side, Trade

Aio = Any  # conftest.Aio (conftest modules are not importable by name)
CAPTURE_TRADES = 9757


def assert_equal_candles(ours: list[Candle], expected: pd.DataFrame) -> None:
    frame = candles_to_frame(ours)
    assert frame["start_ms"].tolist() == expected["start_ms"].tolist()
    for column in CANDLE_COLUMNS[1:]:  # bit for bit: no tolerance
        assert frame[column].tolist() == expected[column].tolist(), column


@pytest.mark.shared_data
def test_every_capture_trade_arrives_and_builds_the_independent_second_candles(
    aio: Aio, capture: Path, expected_seconds: pd.DataFrame
) -> None:
    trades: list[Trade] = []
    candles: list[Candle] = []
    aggregator = CandleAggregator("1s", "BTCUSDT")

    def on_trade(trade: Trade) -> None:
        trades.append(trade)
        closed = aggregator.add(trade)
        if closed is not None:
            candles.append(closed)

    async def scenario() -> None:
        async with ReplayServer(CaptureSource(capture), speed=0) as server:
            feed = BinanceFeed(aio.feed_config(server.url))
            try:
                await feed.subscribe(["BTCUSDT"], CallbackConsumer(on_trade))
                await feed.start()
                await aio.within(server.finished.wait(), 15)
                await aio.eventually(lambda: len(trades) >= CAPTURE_TRADES, "every trade")
                await asyncio.sleep(0.05)  # nothing more may come
            finally:
                await feed.stop()
            metrics = feed.metrics()
            assert metrics.messages == metrics.trades == CAPTURE_TRADES
            assert (metrics.parse_errors, metrics.gaps, metrics.reconnects) == (0, 0, 0)
            assert server.connections_served == 1

    aio.run(scenario())
    assert len(trades) == CAPTURE_TRADES
    last = aggregator.flush()
    assert last is not None
    assert_equal_candles([*candles, last], expected_seconds)


@pytest.mark.shared_data
def test_a_dropped_connection_is_retried_resubscribed_and_its_hole_backfilled(
    aio: Aio, capture: Path, expected_seconds: pd.DataFrame
) -> None:
    candles: list[Candle] = []
    gaps: list[Gap] = []
    states: list[FeedState] = []

    async def scenario() -> None:
        async with ReplayServer(CaptureSource(capture), speed=200) as server:
            assert server.rest_url is not None
            healer = SecondCandles(
                candles.append,
                BinanceRestBackfill(server.rest_url, timeout_seconds=5),
                HealingConfig(settle_seconds=0, retry_seconds=0.05),
            )
            feed = BinanceFeed(aio.feed_config(server.url))
            observer = CallbackConsumer(
                lambda t: None, gaps.append, lambda s: states.append(s.state)
            )
            try:
                await feed.subscribe(["BTCUSDT"], healer)
                await feed.subscribe(["BTCUSDT"], observer)
                server.drop_connections_after(12_000, resume_when_resubscribed=True)  # a third in
                await feed.start()
                await aio.within(server.finished.wait(), 15)
                await aio.eventually(lambda: len(gaps) == 1, "the gap")
                await aio.eventually(
                    lambda: feed.metrics().trades + gaps[0].missing_trades == CAPTURE_TRADES,
                    "every trade but the missed ones",
                )
                healer.flush()
                await aio.within(healer.wait_idle(), 15)
            finally:
                await feed.stop()
                await healer.aclose()
            metrics = feed.metrics()
            assert metrics.reconnects == 1 and metrics.gaps == 1
            assert metrics.trades == CAPTURE_TRADES - gaps[0].missing_trades
            assert server.connections_served == 2
            assert server.streams_of_sessions() == []  # stopped: the session is gone
            assert "/api/v3/klines" in server.rest.requests
            assert healer.stats.backfills >= 1 and healer.stats.unhealed_gaps == 0

    aio.run(scenario())
    assert len(gaps) == 1 and gaps[0].missing_trades > 0
    assert states[:4] == [FeedState.CONNECTING, FeedState.CONNECTED, FeedState.BACKING_OFF,
                          FeedState.CONNECTING]  # fmt: skip
    assert_equal_candles(candles, expected_seconds)  # no hole, no half-built second


def test_several_symbols_heal_after_a_drop_without_the_shared_data(aio: Aio) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    published: list[Trade] = []
    candles: list[Candle] = []
    gaps: list[Gap] = []
    seen: dict[str, int] = dict.fromkeys(symbols, 0)

    def on_publish(message: ReplayMessage) -> None:
        if message.trade is not None:
            published.append(message.trade)

    def count(trade: Trade) -> None:
        seen[trade.symbol] += 1

    async def scenario() -> None:
        start = time.time_ns() // 1_000_000
        source = SyntheticSource(symbols, seed=5, start_ms=start, end_ms=start + 40 * 60_000)
        # 40 synthetic minutes in 2 s: ~300 trades a second per symbol, so even the
        # shortest outage (25 ms) misses some of each
        async with ReplayServer(source, speed=1200, on_publish=on_publish) as server:
            assert server.rest_url is not None
            healer = SecondCandles(
                candles.append,
                BinanceRestBackfill(server.rest_url, timeout_seconds=5),
                HealingConfig(settle_seconds=0, retry_seconds=0.05),
            )
            feed = BinanceFeed(aio.feed_config(server.url))
            try:
                await feed.subscribe(symbols, healer)
                await feed.subscribe(symbols, CallbackConsumer(count, gaps.append))
                await feed.start()
                await aio.eventually(lambda: min(seen.values()) > 10, "trades of every symbol")
                assert server.drop_connections() == 1
                await aio.within(server.finished.wait())

                def all_accounted() -> bool:
                    missed = sum(gap.missing_trades for gap in gaps)
                    return feed.metrics().trades + missed == len(published)

                await aio.eventually(all_accounted, "every trade received or reported missed")
                healer.flush()
                await aio.within(healer.wait_idle(), 15)
            finally:
                await feed.stop()
                await healer.aclose()
            assert feed.metrics().reconnects == 1 and len(gaps) == 3
            assert healer.stats.backfills == 3 and healer.stats.unhealed_gaps == 0

    aio.run(scenario())
    for symbol in symbols:
        expected = list(candles_from_trades([t for t in published if t.symbol == symbol], "1s"))
        assert [c for c in candles if c.symbol == symbol] == expected


def synthetic(*symbols: str) -> SyntheticSource:
    return SyntheticSource(symbols, seed=3)


def test_symbols_subscribed_and_dropped_at_runtime(aio: Aio) -> None:
    async def scenario() -> None:
        async with ReplayServer(synthetic("BTCUSDT", "ETHUSDT"), speed=900) as server:
            feed = BinanceFeed(aio.feed_config(server.url))
            got: list[Trade] = []
            consumer = CallbackConsumer(got.append)
            try:
                btc = await feed.subscribe(["BTCUSDT"], consumer)
                await feed.start()
                await aio.eventually(lambda: len(got) > 0, "a BTCUSDT trade")
                assert server.streams_of_sessions() == [{"btcusdt@trade"}]

                await feed.subscribe(["ETHUSDT"], consumer)  # returns once Binance has replied
                assert server.streams_of_sessions() == [{"btcusdt@trade", "ethusdt@trade"}]
                await aio.eventually(lambda: got[-1].symbol == "ETHUSDT", "an ETHUSDT trade")

                await feed.unsubscribe(btc)
                assert server.streams_of_sessions() == [{"ethusdt@trade"}]
                mark = len(got)
                await aio.eventually(lambda: len(got) >= mark + 5, "more ETHUSDT trades")
                assert {t.symbol for t in got[mark:]} == {"ETHUSDT"}
                assert feed.status().symbols == ("ETHUSDT",)
                assert server.connections_served == 1
                assert feed.metrics().replies == 2
            finally:
                await feed.stop()

    aio.run(scenario())


def test_a_consumer_joining_a_connected_feed_hears_that_it_is_connected(aio: Aio) -> None:
    # An engine started without bots: the feed connects while nobody listens, and the
    # first bot's subscription must still learn the feed is up (else it waits forever).
    async def scenario() -> None:
        async with ReplayServer(synthetic("BTCUSDT"), speed=900) as server:
            feed = BinanceFeed(aio.feed_config(server.url))
            states: list[FeedState] = []
            try:
                await feed.start()
                await aio.eventually(
                    lambda: feed.status().state is FeedState.CONNECTED, "the connection"
                )
                consumer = CallbackConsumer(lambda t: None, None, lambda s: states.append(s.state))
                await feed.subscribe(["BTCUSDT"], consumer)
                assert states == [FeedState.CONNECTED]
            finally:
                await feed.stop()
            assert states[-1] is FeedState.STOPPED

    aio.run(scenario())


def test_two_subscribers_share_one_connection(aio: Aio) -> None:
    async def scenario() -> None:
        async with ReplayServer(synthetic("BTCUSDT", "ETHUSDT"), speed=900) as server:
            feed = BinanceFeed(aio.feed_config(server.url))
            first: list[Trade] = []
            second: list[Trade] = []
            try:
                await feed.subscribe(["BTCUSDT", "ETHUSDT"], CallbackConsumer(first.append))
                await feed.subscribe(["BTCUSDT"], CallbackConsumer(second.append))
                await feed.start()
                await aio.eventually(lambda: len(second) >= 20, "twenty BTCUSDT trades")
            finally:
                await feed.stop()
            assert server.connections_served == 1
            btc_seen_by_first = [t for t in first if t.symbol == "BTCUSDT"]
            assert btc_seen_by_first[: len(second)] == second[: len(btc_seen_by_first)]
            assert {t.symbol for t in second} == {"BTCUSDT"}
            metrics = feed.metrics()
            assert metrics.trades == metrics.messages  # each message parsed once, for both

    aio.run(scenario())


def test_synthetic_replay_latency_is_measured_against_the_wall_clock(aio: Aio) -> None:
    async def scenario() -> None:
        async with ReplayServer(synthetic("BTCUSDT"), speed=600) as server:
            feed = BinanceFeed(aio.feed_config(server.url))
            got: list[Trade] = []
            try:
                await feed.subscribe(["BTCUSDT"], CallbackConsumer(got.append))
                await feed.start()
                await aio.eventually(lambda: len(got) >= 30, "thirty trades")
            finally:
                await feed.stop()
            latency = feed.metrics().latency
            assert latency.samples >= 30
            assert -5 < latency.p50_ms < 500  # E is mapped to the wall clock when paced

    aio.run(scenario())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused


def test_an_unreachable_feed_backs_off_and_says_why(aio: Aio) -> None:
    async def scenario() -> None:
        feed = BinanceFeed(aio.feed_config(f"ws://127.0.0.1:{free_port()}"))
        try:
            await feed.subscribe(["BTCUSDT"], TradeQueue())
            await feed.start()
            await aio.eventually(lambda: feed.status().attempt >= 3, "three failed attempts")
            status = feed.status()
            assert status.state in (FeedState.BACKING_OFF, FeedState.CONNECTING)
            assert (
                status.last_error is not None
                and "cannot connect to ws://127.0.0.1" in status.last_error
            )
            assert "/stream?streams=btcusdt@trade" in status.last_error
            policy = feed.config.backoff
            if status.retry_in_seconds is not None:
                assert status.retry_in_seconds <= policy.ceiling(status.attempt)
            assert feed.metrics().reconnects == 0
        finally:
            await feed.stop()
        assert feed.status().state is FeedState.STOPPED

    aio.run(scenario())


def test_a_symbol_binance_does_not_know_is_reported_silent_not_fatal(aio: Aio) -> None:
    async def scenario() -> None:
        async with ReplayServer(synthetic("BTCUSDT"), speed=600) as server:
            feed = BinanceFeed(aio.feed_config(server.url, silence_seconds=0.3))
            got: list[Trade] = []
            try:
                await feed.subscribe(["BTCUSDT", "NOSUCHCOIN"], CallbackConsumer(got.append))
                await feed.start()
                await aio.eventually(lambda: feed.status().silent == ("NOSUCHCOIN",), "silence")
                assert feed.status().state is FeedState.CONNECTED
                assert {t.symbol for t in got} == {"BTCUSDT"}
            finally:
                await feed.stop()

    aio.run(scenario())


GOOD = {"e": "trade", "E": 2_000, "s": "BTCUSDT", "t": 1, "p": "1.5", "q": "2", "T": 1_999,
        "m": False, "M": True}  # fmt: skip
HOSTILE_FRAMES: list[str | bytes] = [
    "not json at all",
    b"\x00\x01binary",
    b'{"stream":"btcusdt@trade","data":{}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","p":[1]}}',
    json.dumps({"stream": "btcusdt@trade", "data": {**GOOD, "t": "one"}}),
    json.dumps({"stream": "btcusdt@trade", "data": {**GOOD, "e": "kline"}}),  # unknown event
    json.dumps({"stream": "btcusdt@depth", "data": {"e": "depthUpdate"}}),  # not subscribed
    '{"result":null,"id":999}',  # a reply nobody waits for
    "[]",
]


def test_malformed_frames_are_counted_and_skipped_and_the_connection_stays(aio: Aio) -> None:
    async def hostile(connection: ServerConnection) -> None:
        for frame in HOSTILE_FRAMES:
            await connection.send(frame)
        await connection.send(trade_message(Trade("BTCUSDT", 1_999, 1.5, 2.0, Side.BUY, 1)))
        await connection.wait_closed()

    async def scenario() -> None:
        async with serve(hostile, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            feed = BinanceFeed(aio.feed_config(f"ws://127.0.0.1:{port}"))
            got: list[Trade] = []
            try:
                await feed.subscribe(["BTCUSDT"], CallbackConsumer(got.append))
                await feed.start()
                await aio.eventually(lambda: len(got) == 1, "the good trade after the bad frames")
                metrics = feed.metrics()
                assert metrics.messages == len(HOSTILE_FRAMES) + 1
                assert (metrics.parse_errors, metrics.unhandled, metrics.replies) == (6, 2, 1)
                assert feed.status().state is FeedState.CONNECTED
                assert metrics.reconnects == 0
            finally:
                await feed.stop()

    aio.run(scenario())


def test_a_refused_symbol_is_pinpointed_reported_and_left_out_of_reconnects(aio: Aio) -> None:
    paths: list[str] = []

    async def picky(connection: ServerConnection) -> None:
        assert connection.request is not None
        paths.append(connection.request.path)
        async for text in connection:
            request = json.loads(text)
            if any("bad" in stream for stream in request["params"]):
                error = {"code": 2, "msg": "Invalid request: invalid stream"}
                await connection.send(json.dumps({"error": error, "id": request["id"]}))
            else:
                await connection.send(json.dumps({"result": None, "id": request["id"]}))
            if len(paths) == 1 and request["params"] == ["btcusdt@trade"]:
                await connection.close()  # then see what the reconnect asks for

    async def scenario() -> None:
        async with serve(picky, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            feed = BinanceFeed(aio.feed_config(f"ws://127.0.0.1:{port}"))
            try:
                await feed.start()
                await aio.eventually(lambda: feed.status().state is FeedState.CONNECTED, "link")
                await feed.subscribe(["BTCUSDT", "BADCOIN"], TradeQueue())
                status = feed.status()
                assert status.rejected == ("BADCOIN",)
                assert status.symbols == ("BADCOIN", "BTCUSDT")
                assert status.last_error is not None and "invalid stream" in status.last_error
                await aio.eventually(lambda: len(paths) == 2, "the reconnect")
                await aio.eventually(lambda: feed.status().state is FeedState.CONNECTED, "relink")
                assert paths == ["/stream", "/stream?streams=btcusdt@trade"]
            finally:
                await feed.stop()
                await feed.stop()  # idempotent
            assert feed.metrics().reconnects == 1

    aio.run(scenario())


def test_feed_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="ws:// or wss://"):
        BinanceFeedConfig(base_url="http://127.0.0.1:1")
    assert BinanceFeedConfig(base_url="ws://h:1/").stream_url({"b@trade", "a@trade"}) == (
        "ws://h:1/stream?streams=a@trade/b@trade"
    )
