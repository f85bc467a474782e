"""`tradepipe live review` over a day of 1 s candles of one bot, on evidence a real engine made.

A real `Engine` (SQLite, paper broker, recording on) is fed a day of trades, one a second
(a random walk around 30,000, either taker side), so every second closes a 1 s candle: 86,400
candles and decisions per bot. Two bots trade them, the shipped `ema_rsi` and an
always-enter strategy (many positions to match). Then each bot is reviewed as the CLI does
it (`research.review.review_bot`: read the evidence, recompute the features in batch, replay
the strategy version through the backtester, compare features, decisions and positions).

The engine is fed about 10,000 times faster than live, so its database writes and paper
fills lag behind the market clock (a maker timeout of 30 s of market time is a few ms of
wall time): its positions are not what a live day would give, and the review says so in
its divergences. The figure here is the review's time, not its verdict (the tests check
the verdict on a replay played at a pace the engine keeps up with).

Reference, measured in the same run: reading the same bot's evidence alone (its decision log
and the recorded candles), the I/O no review can avoid. Nothing here asserts a time.
Model bots add a batch prediction over the day (LightGBM, well under a second for 86,400
rows); these bots use no model, so the figure is the review's own machinery.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_engine import START_MS, drive, prepare
from benchmarks.harness import Measurement, report
from research.backtest import DEFAULT_FEES
from research.review import review_bot
from research.review.run import ReviewInputs
from tradepipe.domain import Side, Trade
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import read_decisions

DAY_SECONDS = 86_400
LIVE = "binance-live"
BOTS = {"btcusdt_0": "always", "btcusdt_1": "ema_rsi"}  # bench_engine's bot_names order


def day_of_trades(seconds: int = DAY_SECONDS) -> list[Trade]:
    """One trade in each second (at its middle), a random walk of 2 bp steps."""
    rng = np.random.default_rng(3)
    prices = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-4, seconds)))
    buys = rng.random(seconds) < 0.5
    quantities = rng.uniform(0.001, 0.1, seconds)
    return [
        Trade(
            "BTCUSDT",
            START_MS + index * 1_000 + 500,
            float(round(prices[index], 2)),
            float(round(quantities[index], 5)),
            Side.BUY if buys[index] else Side.SELL,
            index + 1,
        )
        for index in range(seconds)
    ]


def record_a_day(folder: Path) -> str:
    """Run the engine over the day with recording on; the database URL it traded into."""
    config = prepare(
        folder,
        ["BTCUSDT"],
        len(BOTS),
        "1s",
        record_candles=True,
        record_decisions=True,
        market_data_dir=folder / "market_data",
        decision_log_dir=folder / "decisions",
        record_exchange=LIVE,
        evidence_queue_size=4 * DAY_SECONDS,  # fed faster than live: nothing may drop
    )
    trades = day_of_trades()
    run = asyncio.run(drive(config, trades, yield_every=1))  # broker fills keep up
    print(
        f"  engine: {len(trades):,} trades (a day, one a second) fed in {run.feed_seconds:.1f} s,"
        f" {run.decisions:,} decisions, {run.metrics.get('evidence_dropped_total', 0):,.0f} "
        "evidence items dropped"
    )
    return config.database_url


def read_evidence(folder: Path, bot: str) -> int:
    decisions = read_decisions(folder / "decisions", bots=[bot])
    candles = MarketDataStore(folder / "market_data").read_candles(LIVE, "BTCUSDT", "1s")
    return len(decisions) + len(candles)


def run() -> None:
    print("live review of one bot over a day of 1 s candles (evidence from a real engine run)")
    with tempfile.TemporaryDirectory(prefix="bench_review_") as name:
        folder = Path(name)
        url = record_a_day(folder)
        for bot, strategy in BOTS.items():
            inputs = ReviewInputs(
                bot=bot,
                database_url=url,
                market_data_dir=folder / "market_data",
                decision_log_dir=folder / "decisions",
                record_exchange=LIVE,
                mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",  # unused: no model
                fees=DEFAULT_FEES,
            )
            started = time.perf_counter()
            found = review_bot(inputs)
            reviewed = time.perf_counter() - started
            started = time.perf_counter()
            rows = read_evidence(folder, bot)
            reading = time.perf_counter() - started
            print(
                f"  {bot} ({strategy}): {found.decisions_compared:,} decisions, "
                f"{found.features_compared:,} feature values, {found.positions_live} live and "
                f"{found.positions_backtest} backtest positions, {len(found.matches)} matched; "
                f"features equal {found.features_equal}, decisions equal "
                f"{found.decisions_equal}, {len(found.divergences)} divergences"
            )
            report(
                f"  review time, {bot}",
                Measurement("review (a day of 1 s candles)", reviewed, DAY_SECONDS, "candles"),
                Measurement("reading its evidence alone", reading, rows, "rows"),
            )


if __name__ == "__main__":
    run()
