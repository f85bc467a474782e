"""Many bots over many symbols in one engine, fed at the replay's real rate.

A real `Engine` (paper broker, SQLite or PostgreSQL, the shipped `ema_rsi` strategy and an
always-enter one) on `TRADEPIPE_BENCH_SYMBOLS` symbols (default 300), each a copy of the
real Binance BTCUSDT capture's trades under its own name, and `TRADEPIPE_BENCH_BOTS` bots
(default 10,000) spread evenly over them, alternating strategy and timeframe
(`TRADEPIPE_BENCH_TIMEFRAMES`, default `1s,1m`). The trades are pushed through an
`InMemoryFeed` at the capture's own pace (`TRADEPIPE_BENCH_SPEED` times real time, default
1) for `TRADEPIPE_BENCH_SECONDS` of market (default 120), so the recorder, the outbox and
the paper broker run between trades exactly as live. `TRADEPIPE_BENCH_DATABASE=postgresql`
runs on the local PostgreSQL server (TRADEPIPE_TEST_PG_URL) instead of a SQLite file.

Figures, each against its target (issue 17) and a reference measured in the same run:
- resident memory (VmRSS sampled every second; the highest), against the process before
  the engine was built;
- decision latency, from each decision listener call of the core (the input that closed
  the candle reaching the core to the bot's decision: what the engine's
  `tradepipe_decision_latency_seconds` histogram observes), p50, p99 and max, against the
  handling of a trade that closes nothing;
- database writes: the recorder's backlog sampled every second while the market plays, and
  how long it takes to empty once the market stops: the writes keep up when it empties
  within `KEEP_UP_SECONDS` (the writer is never more than that behind the market).
Nothing here asserts a time; a missed target is printed as missed, with its figure.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import statistics
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_engine import BOT_CONFIG, QUIET, percentile, prepare_folder, rss_mb
from benchmarks.postgres import fresh_database
from live.engine import EngineConfig, build_engine
from live.feeds import InMemoryFeed
from tradepipe.capture import capture_trades
from tradepipe.db import upgrade_database
from tradepipe.domain import Trade

CAPTURE_FILE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
)
TARGET_RSS_MB = 1024.0
TARGET_P99_MS = 5.0
TARGET_MAX_MS = 50.0
KEEP_UP_SECONDS = 1.0
# exits close enough to the entry that positions turn over during the run: a steady
# stream of orders, fills and database writes rather than one burst at the start
SCALE_BOT_CONFIG = {
    **BOT_CONFIG,
    "take_profit_pct": 0.02,
    "stop_loss_pct": 0.02,
    "max_holding_seconds": 20.0,
}


@dataclass(frozen=True)
class Scale:
    """The size of the run, from the environment (`from_environment`)."""

    bots: int  # TRADEPIPE_BENCH_BOTS
    symbols: int  # TRADEPIPE_BENCH_SYMBOLS: copies of the capture's market, named C000USDT...
    timeframes: tuple[str, ...]  # TRADEPIPE_BENCH_TIMEFRAMES, comma-separated, bots cycle them
    seconds: float  # TRADEPIPE_BENCH_SECONDS: of market, from the capture's start

    speed: float  # TRADEPIPE_BENCH_SPEED: times the capture's own pace
    database: str  # TRADEPIPE_BENCH_DATABASE: sqlite (a file) or postgresql (the local server)

    @classmethod
    def from_environment(cls) -> Scale:
        env = os.environ.get
        return cls(
            bots=int(env("TRADEPIPE_BENCH_BOTS", "10000")),
            symbols=int(env("TRADEPIPE_BENCH_SYMBOLS", "300")),
            timeframes=tuple(env("TRADEPIPE_BENCH_TIMEFRAMES", "1s").split(",")),
            seconds=float(env("TRADEPIPE_BENCH_SECONDS", "120")),
            speed=float(env("TRADEPIPE_BENCH_SPEED", "1")),
            database=env("TRADEPIPE_BENCH_DATABASE", "sqlite"),
        )

    def symbol_names(self) -> list[str]:
        return [f"C{index:03d}USDT" for index in range(self.symbols)]


@dataclass
class ScaleRun:
    decision_ns: array[int] = field(default_factory=lambda: array("q"))
    quiet_push_ns: array[int] = field(default_factory=lambda: array("q"))
    backlog: list[int] = field(default_factory=list)
    rss_samples: list[float] = field(default_factory=list)
    rss_before_mb: float = 0.0
    start_seconds: float = 0.0
    feed_seconds: float = 0.0
    drain_seconds: float = float("inf")
    trades: int = 0
    decisions: int = 0
    entries: int = 0
    transactions: int = 0
    writes: int = 0
    histogram_count: float = 0.0


def market(scale: Scale) -> list[Trade]:
    """The capture's first `scale.seconds` of trades, once per symbol, in time order."""
    source = list(capture_trades(CAPTURE_FILE, "BTCUSDT"))
    end_ms = source[0].time_ms + int(scale.seconds * 1000)
    source = [trade for trade in source if trade.time_ms < end_ms]
    trades = [
        Trade(name, t.time_ms, t.price, t.quantity, t.taker_side, t.trade_id)
        for t in source
        for name in scale.symbol_names()
    ]
    return trades  # by time (the source is), the symbols in one order within each trade


def bot_specs(scale: Scale) -> list[tuple[str, str, str, str]]:
    """(name, symbol, strategy, timeframe) of every bot: spread evenly over the symbols."""
    names = scale.symbol_names()
    specs = []
    for index in range(scale.bots):
        symbol = names[index % len(names)]
        strategy = "ema_rsi" if (index // len(names)) % 2 else "always"
        timeframe = scale.timeframes[(index // (2 * len(names))) % len(scale.timeframes)]
        specs.append((f"bot_{index:05d}", symbol, strategy, timeframe))
    return specs


async def play(config: EngineConfig, trades: list[Trade], speed: float) -> ScaleRun:
    """Push `trades` at `speed` times their own pace; sample memory and the write backlog."""
    run = ScaleRun(rss_before_mb=rss_mb())
    feed = InMemoryFeed("binance")
    engine = build_engine(config, feed=feed)
    decisions = run.decision_ns
    engine.core.decision_listeners.append(lambda _strategy, elapsed: decisions.append(elapsed))
    began = time.perf_counter()
    await engine.start()
    run.start_seconds = time.perf_counter() - began
    metrics, recorder, clock = engine.core.metrics, engine.recorder, time.perf_counter_ns
    try:
        first_ms = trades[0].time_ms
        began = time.perf_counter()
        next_sample = began
        for trade in trades:
            due = began + (trade.time_ms - first_ms) / 1000 / speed
            now = time.perf_counter()
            if now >= next_sample:
                run.backlog.append(recorder.pending)
                run.rss_samples.append(rss_mb())
                next_sample = now + 1.0
            if due > now:
                await asyncio.sleep(due - now)  # the loop's other tasks run meanwhile
            before = metrics.decisions
            arrived = clock()
            feed.push(trade)
            if metrics.decisions == before:
                run.quiet_push_ns.append(clock() - arrived)
        run.feed_seconds = time.perf_counter() - began
        stopped = time.perf_counter()
        while recorder.pending and time.perf_counter() - stopped < 60:
            await asyncio.sleep(0.01)
        if not recorder.pending:
            run.drain_seconds = time.perf_counter() - stopped
        run.backlog.append(recorder.pending)
        run.rss_samples.append(rss_mb())
        run.trades, run.decisions, run.entries = len(trades), metrics.decisions, metrics.entries
        run.transactions, run.writes = recorder.transactions, recorder.last_submitted
        samples = next(iter(engine.latency.decision.collect())).samples
        run.histogram_count = sum(s.value for s in samples if s.name.endswith("_count"))
    finally:
        await engine.stop()
    return run


def measure(scale: Scale, database_url: str | None) -> ScaleRun:
    trades = market(scale)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'trading.db'}"
        if database_url is None:
            upgrade_database(url)
        began = time.perf_counter()
        strategies = prepare_folder(Path(folder), url, bot_specs(scale), SCALE_BOT_CONFIG)
        setup = time.perf_counter() - began
        config = EngineConfig(
            database_url=url,
            strategies_dir=strategies,
            engine_max_bots=scale.bots,
            **QUIET,
        )
        run = asyncio.run(play(config, trades, scale.speed))
    print(
        f"  {scale.bots:,} bots over {scale.symbols} symbols (timeframes "
        f"{','.join(scale.timeframes)}; {scale.database}): bots added in {setup:.1f} s, "
        f"engine start {run.start_seconds:.1f} s; {run.trades:,} trades over "
        f"{scale.seconds:g} s of market at {scale.speed:g}x, played in {run.feed_seconds:.1f} s; "
        f"{run.decisions:,} decisions, {run.entries:,} entries"
    )
    return run


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def report(scale: Scale, run: ScaleRun) -> dict[str, bool]:
    peak = max(run.rss_samples, default=float("nan"))
    grown = peak - run.rss_before_mb
    met = {"rss": peak <= TARGET_RSS_MB}
    print(
        f"  resident memory: {peak:,.0f} MB at most ({grown:,.0f} MB for the engine, "
        f"{grown * 1024 / max(scale.bots, 1):,.0f} kB a bot); reference: the process before "
        f"the engine, {run.rss_before_mb:,.0f} MB ({peak / run.rss_before_mb:.2f}x); "
        f"target <= {TARGET_RSS_MB:,.0f} MB: {verdict(met['rss'])}"
    )
    values = [ns / 1e6 for ns in run.decision_ns]
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    worst = max(values, default=float("nan"))
    quiet = statistics.median(run.quiet_push_ns) / 1e6 if run.quiet_push_ns else float("nan")
    met["p99"], met["max"] = p99 <= TARGET_P99_MS, worst <= TARGET_MAX_MS
    print(
        f"  decision latency over {len(values):,} decisions (histogram count "
        f"{run.histogram_count:,.0f}): p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {worst:.3f} ms; "
        f"reference: a trade that closes nothing, p50 {quiet:.4f} ms (decision p50 "
        f"{p50 / quiet:,.1f}x of it)"
    )
    print(
        f"  target p99 <= {TARGET_P99_MS:g} ms: {verdict(met['p99'])} ({p99 / TARGET_P99_MS:.2f} "
        f"of it); target max <= {TARGET_MAX_MS:g} ms: {verdict(met['max'])} "
        f"({worst / TARGET_MAX_MS:.2f} of it)"
    )
    met["writes"] = run.drain_seconds <= KEEP_UP_SECONDS
    rate = run.writes / max(run.feed_seconds, 1e-9)
    print(
        f"  database writes: {run.writes:,} in {run.transactions:,} transactions "
        f"({rate:,.0f} a second of play); backlog sampled each second: max "
        f"{max(run.backlog, default=0):,}, median {statistics.median(run.backlog or [0]):,.0f}; "
        f"emptied {run.drain_seconds:.2f} s after the market stopped; target: within "
        f"{KEEP_UP_SECONDS:g} s (writes keep up): {verdict(met['writes'])}"
    )
    return met


def run() -> None:
    if not CAPTURE_FILE.is_file():
        print(f"  skipped: {CAPTURE_FILE} not found (the shared exchange data)")
        return
    scale = Scale.from_environment()
    print(f"engine at scale: {scale.bots:,} bots, {scale.symbols} symbols, real-rate market")
    gc.collect()
    if scale.database == "postgresql":
        with fresh_database("engine at scale") as url:
            if url is None:
                return
            result = measure(scale, url)
    else:
        result = measure(scale, None)
    met = report(scale, result)
    missed = [name for name, ok in met.items() if not ok]
    print(f"  targets: {'all met' if not missed else 'MISSED: ' + ', '.join(missed)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  (process peak, setup included: {peak:,.0f} MB)")


if __name__ == "__main__":
    run()
