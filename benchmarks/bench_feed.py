"""Market data throughput and latency on the real Binance capture.

Pipeline: raw message -> the feed's router (kernel parsers, metrics, trade checks of
live/feeds/sanity.py, gap check) -> 1 s candles -> 1 m candles -> incremental features of the
1 m candles: the live engine's path for one symbol. Reference: plain `json.loads` of the
same messages, the floor of any Python feed. Target: 50k messages a second on one core
in-process (no sockets).

Also measured: the same pipeline behind a real loopback socket (replay server and feed in
one process, so on one core for both), and message-to-candle latency: in-process, the
time to handle the trade that closes a candle; over loopback, at 10x the capture's real
rate, from the moment the replay publishes that trade to the candle being built.
Skips with a note when ../shared/data is absent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Measurement, best_of, report
from live.feeds import BinanceFeed, BinanceFeedConfig, FeedStatus, Gap, StreamRouter, Subscription
from live.replay import CaptureSource, ReplayMessage, ReplayServer, ReplaySource
from tradepipe.candles import CandleAggregator, CandleResampler
from tradepipe.capture import iter_capture
from tradepipe.domain import Trade
from tradepipe.features import IncrementalFeatures, default_spec

CAPTURE = Path(__file__).resolve().parents[2] / "shared" / "data"
CAPTURE_FILE = CAPTURE / "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
TARGET_PER_SECOND = 50_000
REPEATS = 11  # short runs on a shared machine: the best of many is the undisturbed one
LATENCY_SPEED = 10.0
LATENCY_SECONDS = 60.0  # of the capture: 6 s of wall time at 10x


class Pipeline:
    """The engine's per-symbol market-data path, as a feed consumer."""

    def __init__(self) -> None:
        self.seconds = CandleAggregator("1s", "BTCUSDT")
        self.minutes = CandleResampler("1m", "BTCUSDT")
        self.features = IncrementalFeatures(default_spec())
        self.second_candles = 0
        # (trade that closed a 1 s candle, perf_counter when the candle was through)
        self.closings: list[tuple[Trade, float]] = []

    def on_trade(self, trade: Trade) -> None:
        closed = self.seconds.add(trade)
        if closed is not None:
            self.second_candles += 1
            minute = self.minutes.add(closed)
            if minute is not None:
                self.features.update(minute)
            self.closings.append((trade, time.perf_counter()))

    def on_gap(self, gap: Gap) -> None:
        pass

    def on_status(self, status: FeedStatus) -> None:
        pass


class _Null:
    def on_trade(self, trade: Trade) -> None:
        pass

    def on_gap(self, gap: Gap) -> None:
        pass

    def on_status(self, status: FeedStatus) -> None:
        pass


def _router(consumer: Pipeline | _Null) -> StreamRouter:
    router = StreamRouter()
    router.add(Subscription(frozenset({"BTCUSDT"}), consumer))
    return router


def _through_router(messages: list[str], consumer: Pipeline | _Null) -> StreamRouter:
    router = _router(consumer)
    handle = router.handle
    clock = time.time_ns
    for raw in messages:
        handle(raw, clock())
    return router


def _json_only(messages: list[str]) -> None:
    loads = json.loads
    for raw in messages:
        loads(raw)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _in_process_latency(messages: list[str]) -> list[float]:
    """Handling time (µs) of each message that closes a 1 s candle."""
    pipeline = Pipeline()
    router = _router(pipeline)
    latencies = []
    for raw in messages:
        before = pipeline.second_candles
        started = time.perf_counter_ns()
        router.handle(raw, time.time_ns())
        if pipeline.second_candles != before:
            latencies.append((time.perf_counter_ns() - started) / 1_000)
    return latencies


class _Slice:
    """The first `seconds` of a capture, as a replay source."""

    def __init__(self, inner: CaptureSource, seconds: float) -> None:
        self.inner = inner
        self.limit_ns = int(seconds * 1e9)

    @property
    def description(self) -> str:
        return self.inner.description

    @property
    def symbols(self) -> frozenset[str]:
        return self.inner.symbols

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        for message in self.inner.messages(wall_start_ns, speed):
            if message.offset_ns > self.limit_ns:
                return
            yield message


async def _over_loopback(
    source: ReplaySource, speed: float, trades: int
) -> tuple[float, list[float]]:
    """(seconds until `trades` trades went through, publish-to-candle latencies in s)."""
    published: dict[int | None, float] = {}

    def on_publish(message: ReplayMessage) -> None:
        if message.trade is not None:
            published[message.trade.trade_id] = time.perf_counter()

    pipeline = Pipeline()
    async with ReplayServer(source, speed=speed, rest_port=None, on_publish=on_publish) as server:
        feed = BinanceFeed(BinanceFeedConfig(base_url=server.url, control_interval_seconds=0))
        try:
            await feed.subscribe(["BTCUSDT"], pipeline)
            started = time.perf_counter()
            await feed.start()
            while feed.metrics().trades < trades:
                await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - started
        finally:
            await feed.stop()
    latencies = [built - published[trade.trade_id] for trade, built in pipeline.closings]
    return elapsed, latencies


def run() -> None:
    if not CAPTURE_FILE.is_file():
        print(f"  skipped: {CAPTURE_FILE} not found (the shared exchange data)")
        return
    lines = list(iter_capture(CAPTURE_FILE))
    trades = [line.raw for line in lines if line.raw.startswith('{"stream":"btcusdt@trade"')]
    everything = [line.raw for line in lines if line.raw.startswith('{"stream"')]
    count = len(trades)

    reference = Measurement(
        "json.loads only", best_of(REPEATS, lambda: _json_only(trades)), count, "msgs"
    )
    parse = Measurement(
        "router: parse, metrics, gap check",
        best_of(REPEATS, lambda: _through_router(trades, _Null())),
        count,
        "msgs",
    )
    full = Measurement(
        "router -> 1s -> 1m -> features",
        best_of(REPEATS, lambda: _through_router(trades, Pipeline())),
        count,
        "msgs",
    )
    report(f"{count:,} trade messages of the capture, in-process (one core)", full, reference)
    report("  of which parsing and routing", parse, reference)
    verdict = "meets" if full.rate >= TARGET_PER_SECOND else "MISSES"
    print(f"  pipeline {full.rate:,.0f} msgs/s {verdict} the target of {TARGET_PER_SECOND:,}/s")

    mixed_reference = Measurement(
        "json.loads only", best_of(3, lambda: _json_only(everything)), len(everything), "msgs"
    )
    mixed = Measurement(
        "router (trades subscribed, rest skipped)",
        best_of(3, lambda: _through_router(everything, Pipeline())),
        len(everything),
        "msgs",
    )
    report(
        f"all {len(everything):,} capture messages (depth, bookTicker, trades)",
        mixed,
        mixed_reference,
    )

    latencies = _in_process_latency(trades)
    print(
        f"message-to-1s-candle, in-process: p50 {_percentile(latencies, 0.5):.1f} µs, "
        f"p99 {_percentile(latencies, 0.99):.1f} µs over {len(latencies)} candles"
    )

    capture = CaptureSource(CAPTURE_FILE)
    elapsed = min(asyncio.run(_over_loopback(capture, 0.0, count))[0] for _ in range(3))
    loopback = Measurement("replay server -> socket -> feed -> pipeline", elapsed, count, "msgs")
    report("the same over a loopback WebSocket, as fast as possible", loopback, full)
    print("  (server and feed share the process and its core; the server walks all 41k lines)")

    sliced = _Slice(capture, LATENCY_SECONDS)
    sliced_trades = sum(1 for m in sliced.messages(0, 0) if m.trade is not None)
    _, latencies_s = asyncio.run(_over_loopback(sliced, LATENCY_SPEED, sliced_trades))
    values = [seconds * 1e3 for seconds in latencies_s]
    if values:
        print(
            f"message-to-1s-candle over loopback at {LATENCY_SPEED:g}x the capture's rate "
            f"({LATENCY_SECONDS:g} s of it): p50 {_percentile(values, 0.5):.2f} ms, "
            f"p99 {_percentile(values, 0.99):.2f} ms over {len(values)} candles"
        )
