"""Backtest throughput: the fast engine against backtrader, same strategy, same candles.

Both engines run the shipped `ema_rsi` strategy (market entries) on 100,000 synthetic
1-minute candles with the same precomputed features (so the engines are timed, not the
feature computation; the fast engine including it is printed too), and must produce the
same trades: the benchmark says so, or fails loudly, before it reports a ratio. backtrader
(`run_backtrader`, the reference adapter) is timed best of two, as one run takes seconds.
The issue-17 targets (bars/s, speed-up over backtrader, identical trades) are printed with
pass or FAIL, from this run's figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.harness import Measurement, best_of, report
from research.backtest import BacktestResult, run_backtest
from research.backtest.backtrader_adapter import run_backtrader
from research.marketdata.sources.synthetic import synthetic_candles
from tradepipe.botconfig import BotConfig
from tradepipe.features import compute_features, default_spec
from tradepipe.strategy import LoadedStrategy, load_strategy

CANDLES = 100_000
START_MS = 1_704_067_200_000  # 2024-01-01
STRATEGY = Path(__file__).resolve().parents[1] / "strategies" / "ema_rsi.py"
# issue 17: the fast engine's throughput, alone and against backtrader in the same run
TARGET_BARS_PER_SECOND = 1_000_000
TARGET_SPEEDUP = 250
CONFIG = BotConfig(
    capital_per_trade=1_000,
    take_profit_pct=0.3,
    stop_loss_pct=0.3,
    max_holding_seconds=1_800,
    maker_order_timeout_seconds=180,
)


def run() -> None:
    candles = synthetic_candles("BTCUSDT", "1m", START_MS, START_MS + CANDLES * 60_000)
    rows = len(candles)
    features = compute_features(candles, default_spec())
    loaded = load_strategy(STRATEGY)
    results: dict[str, BacktestResult] = {}

    def fast() -> None:
        results["fast"] = run_backtest(
            candles, loaded.create(), CONFIG, timeframe="1m", features=features
        )

    def fast_with_features() -> None:
        run_backtest(candles, loaded.create(), CONFIG, timeframe="1m")

    def reference() -> None:
        results["backtrader"] = run_backtrader(
            candles, loaded.create(), CONFIG, timeframe="1m", features=features
        )

    # best of 10: a run is ~0.1 s, so the least disturbed of several costs little
    ours = Measurement("run_backtest (fast engine)", best_of(10, fast), rows, "bars")
    ours_all = Measurement(
        "run_backtest, features computed inside", best_of(3, fast_with_features), rows, "bars"
    )
    theirs = Measurement(
        "run_backtrader (backtrader reference)", best_of(2, reference), rows, "bars"
    )
    fast_result, reference_result = results["fast"], results["backtrader"]
    if fast_result.trades != reference_result.trades or fast_result.fills != reference_result.fills:
        raise AssertionError("the engines' trade lists differ: the benchmark is void")
    reasons = Counter(trade.exit_reason for trade in fast_result.trades)
    print(
        f"ema_rsi on {rows:,} synthetic 1m candles: {len(fast_result.trades)} trades "
        f"({', '.join(f'{n} {reason}' for reason, n in sorted(reasons.items()))}), "
        "identical in both engines (trades and fills)"
    )
    report("backtest, bars per second", ours, theirs)
    _targets(ours, theirs, len(fast_result.trades), len(fast_result.fills))
    report("backtest with feature computation", ours_all, theirs)
    _exits(candles, features, loaded)


def _targets(ours: Measurement, theirs: Measurement, trades: int, fills: int) -> None:
    speedup = theirs.seconds / ours.seconds

    def verdict(passed: bool) -> str:
        return "pass" if passed else "FAIL"

    print("targets (issue 17), this run:")
    print(
        f"  bars/s >= {TARGET_BARS_PER_SECOND:,}: {ours.rate:,.0f} "
        f"(backtrader {theirs.rate:,.0f})  {verdict(ours.rate >= TARGET_BARS_PER_SECOND)}"
    )
    print(
        f"  speed-up over backtrader >= {TARGET_SPEEDUP}x: {speedup:,.1f}x  "
        f"{verdict(speedup >= TARGET_SPEEDUP)}"
    )
    # the run stops before this with an AssertionError if they differ
    print(f"  trades identical to backtrader's: yes ({trades} trades, {fills} fills)  pass")


def _exits(candles: pd.DataFrame, features: pd.DataFrame, loaded: LoadedStrategy) -> None:
    """The same run with strategy exits and a trailing stop: the fast engine then steps
    every candle a trailing position is open through (its stop may move on each)."""
    parameters = {"exit_rsi_above": 60.0}
    config = CONFIG.model_copy(update={"trailing_stop_pct": 0.2})
    results: dict[str, BacktestResult] = {}

    def engine(name: str, run_engine: Callable[..., BacktestResult]) -> Callable[[], None]:
        def work() -> None:
            results[name] = run_engine(
                candles, loaded.create(parameters), config, timeframe="1m", features=features
            )

        return work

    rows = len(candles)
    ours = Measurement(
        "run_backtest, exits + trailing", best_of(5, engine("fast", run_backtest)), rows, "bars"
    )
    theirs = Measurement(
        "run_backtrader, exits + trailing", best_of(2, engine("bt", run_backtrader)), rows, "bars"
    )
    if results["fast"].trades != results["bt"].trades:
        raise AssertionError("the engines' trade lists differ with exits: the benchmark is void")
    reasons = Counter(trade.exit_reason for trade in results["fast"].trades)
    print(f"  with exits: {', '.join(f'{n} {reason}' for reason, n in sorted(reasons.items()))}")
    report("backtest with strategy exits and a trailing stop", ours, theirs)
