"""The live engine in-process: trade arrival to strategy decision, and many bots at once.

A real `Engine` (SQLite database, paper broker, the shipped `ema_rsi` strategy and an
always-enter one) fed through an `InMemoryFeed` with the synthetic market's trades, as
fast as the engine takes them. Each `push` runs the whole synchronous path of a trade:
router -> 1 s candles -> the bot's timeframe -> shared incremental features -> strategy
decision -> order state machine -> outbox. Its duration is the message-to-decision latency
for the trades that close a candle (those in which the engine's decision counter moved);
the trades that close nothing are the reference, measured in the same run: the floor of
the per-trade path. Orders, fills and database writes run in the background between
pushes, as live, and are not in the figure.

Targets (issue 4): p99 <= 5 ms; 1000 bots over 100 symbols in <= 1 GB resident.

Storage (issue 14): the recorder's transactions with the SQLite file check before each
(device, inode, mode bits) against the same transactions without it, in the same run; and
what the write journal costs when the database is away: an fsynced append of one
transaction's writes, and the replay of them at start. While the database is available the
journal is not written at all.
Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from live.engine import EngineConfig, build_engine
from live.feeds import InMemoryFeed
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.db import create_engine_for, session_scope, upgrade_database
from tradepipe.domain import Side, Trade
from tradepipe.synthetic import SyntheticMarket

REPO = Path(__file__).resolve().parents[1]
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
TARGET_P99_MS = 5.0
TARGET_RSS_MB = 1024.0
SETUP_BUDGET_SECONDS = 120.0  # above this, the 1000-bot case is scaled down (and says so)
ALWAYS = """
    from tradepipe.strategy import Enter, Strategy, StrategyParameters

    class Always(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return Enter(reason="always") if context.can_enter else None
"""
BOT_CONFIG = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 0.3,
    "stop_loss_pct": 0.3,
    "max_holding_seconds": 600.0,
    "maker_order_timeout_seconds": 30.0,
    "max_open_positions": 1,
}
QUIET = {  # background loops slow enough not to compete with the measured pushes
    "heartbeat_seconds": 5.0,
    "bot_reload_seconds": 30.0,
    "model_poll_seconds": 60.0,
    "tick_seconds": 0.5,
    "rest_url": None,
}


def rss_mb() -> float:
    """Resident memory now (VmRSS), falling back to the peak where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def synthetic_trades(symbols: list[str], hours: float) -> list[Trade]:
    """The synthetic market of every symbol over `hours`, merged in time order."""
    end_ms = START_MS + int(hours * 3_600_000)
    trades = []
    for symbol in symbols:
        frame = SyntheticMarket(symbol).trades(START_MS, end_ms)
        for time_ms, trade_id, price, quantity, buy in frame.itertuples(index=False):
            side = Side.BUY if buy else Side.SELL
            trades.append(
                Trade(symbol, int(time_ms), float(price), float(quantity), side, trade_id)
            )
    trades.sort(key=lambda trade: (trade.time_ms, trade.symbol))
    return trades


def bot_names(symbols: list[str], per_symbol: int) -> Iterator[tuple[str, str, str]]:
    for symbol in symbols:
        for index in range(per_symbol):
            yield f"{symbol.lower()}_{index}", symbol, "ema_rsi" if index % 2 else "always"


def prepare(
    folder: Path, symbols: list[str], per_symbol: int, timeframe: str, **changes: Any
) -> EngineConfig:
    strategies = folder / "strategies"
    strategies.mkdir()
    shutil.copy(REPO / "strategies" / "ema_rsi.py", strategies / "ema_rsi.py")
    (strategies / "always.py").write_text(textwrap.dedent(ALWAYS))
    url = f"sqlite:///{folder / 'trading.db'}"
    upgrade_database(url)
    database = create_engine_for(url)
    try:
        with session_scope(database) as session:
            config = parse_bot_config(BOT_CONFIG)
            for name, symbol, strategy in bot_names(symbols, per_symbol):
                add_bot(session, NewBot(name, strategy, symbol, timeframe, config), strategies)
    finally:
        database.dispose()
    values: dict[str, Any] = {**QUIET, **changes}
    return EngineConfig(database_url=url, strategies_dir=strategies, **values)


class Run:
    def __init__(self) -> None:
        self.decision_ms: list[float] = []
        self.other_ms: list[float] = []
        self.decisions = 0
        self.start_seconds = 0.0
        self.feed_seconds = 0.0
        self.rss_before_mb = 0.0
        self.rss_after_mb = 0.0
        self.metrics: dict[str, float] = {}


async def drive(config: EngineConfig, trades: list[Trade], yield_every: int = 8) -> Run:
    """Push `trades` one by one, letting the loop run (outbox, broker, recorder) every
    `yield_every` trades."""
    run = Run()
    run.rss_before_mb = rss_mb()
    feed = InMemoryFeed("binance")
    engine = build_engine(config, feed=feed)
    started = time.perf_counter()
    await engine.start()
    run.start_seconds = time.perf_counter() - started
    metrics = engine.core.metrics
    clock = time.perf_counter_ns
    began = time.perf_counter()
    try:
        for index, trade in enumerate(trades):
            before = metrics.decisions
            arrived = clock()
            feed.push(trade)
            elapsed_ms = (clock() - arrived) / 1e6
            (run.decision_ms if metrics.decisions != before else run.other_ms).append(elapsed_ms)
            if index % yield_every == 0:
                await asyncio.sleep(0)  # the outbox, broker and recorder run between trades
        run.feed_seconds = time.perf_counter() - began
        run.decisions = metrics.decisions
        run.rss_after_mb = rss_mb()
    finally:
        await engine.stop()
    run.metrics = engine.metrics()
    return run


def measure(
    symbols: int,
    per_symbol: int,
    timeframe: str,
    hours: float,
    changes: Callable[[Path], dict[str, Any]] | None = None,
) -> Run:
    """One engine run; `changes(folder)`: engine settings that differ (paths under folder)."""
    names = ["BTCUSDT"] if symbols == 1 else [f"S{index:03d}USDT" for index in range(symbols)]
    trades = synthetic_trades(names, hours)
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as folder:
        extra = changes(Path(folder)) if changes is not None else {}
        config = prepare(Path(folder), names, per_symbol, timeframe, **extra)
        run = asyncio.run(drive(config, trades))
    print(
        f"  {symbols * per_symbol} bots over {symbols} symbols ({timeframe} candles): "
        f"{len(trades):,} trades, {hours:g} h of market; engine start {run.start_seconds:.1f} s, "
        f"feeding {run.feed_seconds:.1f} s ({len(trades) / max(run.feed_seconds, 1e-9):,.0f}"
        f" trades/s), {run.decisions:,} decisions"
    )
    return run


def report_latency(run: Run) -> None:
    p50, p99 = percentile(run.decision_ms, 0.5), percentile(run.decision_ms, 0.99)
    floor = statistics.median(run.other_ms) if run.other_ms else float("nan")
    print(
        f"  trade -> decision (candle-closing trades, n={len(run.decision_ms):,}): "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {max(run.decision_ms, default=0):.3f} ms "
        f"(target p99 <= {TARGET_P99_MS:g} ms: {p99 / TARGET_P99_MS:.2f} of it)"
    )
    print(
        f"  reference: a trade that closes nothing, p50 {floor:.4f} ms; "
        f"decision p50 / reference = {p50 / floor:,.1f}x"
    )


def run() -> None:
    bench_storage()
    print("engine, one symbol: message-to-decision latency in-process")
    report_latency(measure(symbols=1, per_symbol=10, timeframe="1s", hours=2.0))

    print("engine, many bots: resident memory and decision latency")
    started = time.perf_counter()
    small = measure(symbols=10, per_symbol=10, timeframe="1m", hours=2.0)
    small_seconds = time.perf_counter() - started
    report_latency(small)
    projected = small_seconds * 10
    symbols, per_symbol = 100, 10
    if projected > SETUP_BUDGET_SECONDS:
        symbols = max(10, int(100 * SETUP_BUDGET_SECONDS / projected))
        print(
            f"  SCALED DOWN: 100 bots took {small_seconds:.0f} s, 1000 would take about "
            f"{projected:.0f} s; running {symbols * per_symbol} bots over {symbols} symbols"
        )
    big = measure(symbols=symbols, per_symbol=per_symbol, timeframe="1m", hours=2.0)
    report_latency(big)
    grown = big.rss_after_mb - big.rss_before_mb
    print(
        f"  resident memory: {big.rss_after_mb:,.0f} MB in all, {grown:,.0f} MB for the engine "
        f"({grown * 1024 / (symbols * per_symbol):,.0f} kB a bot); target <= {TARGET_RSS_MB:g} MB: "
        f"{big.rss_after_mb / TARGET_RSS_MB:.2f} of it; peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
    )
    per_bot_small = (small.rss_after_mb - small.rss_before_mb) / 100
    print(f"  reference: 100 bots, {per_bot_small * 1024:,.0f} kB a bot")


def bench_storage(transactions: int = 400, writes_per_transaction: int = 16) -> None:
    """Recorder transactions with and without the file check; journal append and replay."""
    from datetime import UTC, datetime

    from live.engine.events import EngineEvent
    from live.engine.journal import WriteJournal, replay
    from live.engine.persistence import EventWrite
    from live.engine.recorder import EngineDatabase, is_unavailable

    print("engine storage: the SQLite file check per transaction, the write journal")
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    writes = [
        EventWrite(EngineEvent("bench", f"event {index}", None, {"index": index}, stamp))
        for index in range(writes_per_transaction)
    ]
    with tempfile.TemporaryDirectory(prefix="bench_storage_") as folder:
        url = f"sqlite:///{Path(folder) / 'trading.db'}"
        upgrade_database(url)
        database = EngineDatabase(url, busy_timeout_ms=2_000)
        try:
            database.write(writes, [])  # connections warm
            seconds = {}
            for label, watched in (("without the check", False), ("with the check", True)):
                if watched:
                    database.watch_file()
                began = time.perf_counter()
                for _ in range(transactions):
                    database.write(writes, [])
                seconds[label] = time.perf_counter() - began
            check = database.storage
            assert check is not None
            began = time.perf_counter()
            for _ in range(10_000):
                check.check()
            check_us = (time.perf_counter() - began) / 10_000 * 1e6
            journal = WriteJournal(Path(folder) / "trading.db.journal.jsonl")
            entries = list(enumerate(writes, 1))
            began = time.perf_counter()
            for _ in range(transactions):
                journal.append(entries)
            append_ms = (time.perf_counter() - began) / transactions * 1000
            size_kb = journal.path.stat().st_size / 1024 / transactions
            began = time.perf_counter()
            replay(journal, database.session, is_unavailable=is_unavailable)
            replay_seconds = time.perf_counter() - began
        finally:
            database.dispose()
    plain, checked = seconds["without the check"], seconds["with the check"]
    print(
        f"  {transactions} transactions of {writes_per_transaction} writes: "
        f"{plain / transactions * 1000:.3f} ms each without the file check, "
        f"{checked / transactions * 1000:.3f} ms with it: {checked / plain:.3f}x "
        f"(the check alone {check_us:.1f} us)"
    )
    print(
        f"  journal (only while the database is away): append + fsync of one transaction's "
        f"writes {append_ms:.3f} ms ({size_kb:.1f} kB); replay of "
        f"{transactions * writes_per_transaction:,} writes {replay_seconds:.2f} s"
    )


if __name__ == "__main__":
    run()
