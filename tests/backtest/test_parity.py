"""The fast engine and the backtrader reference trade identically, fill for fill.

Both shipped strategies, market and limit entries, strategy exits and trailing stops, on
real hourly Coinbase candles, the real gappy 1-minute series and synthetic 1-minute
candles. Equality is exact: every trade
(entry and exit time, prices, quantity, exit reason, pnl, fees), every fill, every
maker-order timeout, the equity curve and the metrics. Each case also proves it exercised
the parts of the fill model it is meant to (gaps, ties, the entry-candle rule, timeouts),
so an agreement cannot come from never reaching a rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.backtest import BacktestResult, run_backtest
from research.backtest.backtrader_adapter import run_backtrader
from tradepipe.botconfig import BotConfig
from tradepipe.enums import Side
from tradepipe.features import compute_features, default_spec
from tradepipe.orders import FeeSchedule, barrier_prices
from tradepipe.strategy import LoadedStrategy

# Different maker and taker rates, so a fill booked with the wrong liquidity shows.
FEES = FeeSchedule(maker_rate=0.0002, taker_rate=0.0007)

MARKET_ENTRY = "market entry at the open"
LIMIT_MARKETABLE = "limit entry marketable at the open"
LIMIT_GAPPED = "resting limit entry gapped through, filled at its price"
LIMIT_INSIDE = "limit entry filled inside the candle"
STOP_GAP = "stop-loss gapped through at the open"
STOP_INSIDE = "stop-loss inside the candle"
TAKE_PROFIT_GAP = "take-profit gapped through at the open"
TAKE_PROFIT_INSIDE = "take-profit inside the candle"
TIMEOUT_OPEN = "timeout at the open of a candle past the deadline"
TIMEOUT_CLOSE = "timeout at the close"
ENTRY_CANDLE_EXIT = "exit on the entry candle"
TIE = "stop-loss and take-profit both touched: stop-loss wins"
RULE_5 = "take-profit touched on an inside entry's candle: not taken"
MAKER_TIMEOUT = "maker-order timeout"
STRATEGY_EXIT = "strategy exit at the next open"
STRATEGY_CANCEL = "strategy exit cancelling a pending limit entry"
TRAILING_GAP = "trailing stop gapped through at the open"
TRAILING_INSIDE = "trailing stop inside the candle"
BARRIERS = ("take_profit", "stop_loss", "timeout")


@dataclass(frozen=True)
class Case:
    name: str
    candles: str  # fixture
    timeframe: str
    strategy: str  # fixture
    config: BotConfig
    parameters: dict[str, Any] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()
    shared_data: bool = False
    reasons: tuple[str, ...] = BARRIERS  # exit reasons each met at least 5 times


def config(**values: Any) -> BotConfig:
    return BotConfig(**values)


# Holding times that are not a whole number of candles test "the first candle ending at or
# after the deadline"; max_open_positions > 1 tests overlapping positions.
SYNTHETIC = config(
    capital_per_trade=1_000,
    take_profit_pct=0.08,
    stop_loss_pct=0.05,
    max_holding_seconds=630,
    maker_order_timeout_seconds=150,
    max_open_positions=3,
    confidence_threshold=0.8,
)
HOURLY = config(
    capital_per_trade=1_000,
    take_profit_pct=2,
    stop_loss_pct=1.5,
    max_holding_seconds=12 * 3_600,
    maker_order_timeout_seconds=3 * 3_600,
    max_open_positions=2,
    confidence_threshold=0.7,
)
GAPPY = config(
    capital_per_trade=1,
    take_profit_pct=0.5,
    stop_loss_pct=0.5,
    max_holding_seconds=1_800,
    maker_order_timeout_seconds=300,
    max_open_positions=2,
)
EXITS = frozenset({STOP_INSIDE, TAKE_PROFIT_INSIDE, TIMEOUT_CLOSE, ENTRY_CANDLE_EXIT, TIE})
# A trailing stop looser than the stop-loss, so both stops (and both reasons) occur.
STRATEGY_EXITS = EXITS | {STRATEGY_EXIT, TRAILING_INSIDE}
EXIT_REASONS = (*BARRIERS, "strategy", "trailing_stop")

CASES = [
    Case(
        "synthetic-ema_rsi-market",
        "synthetic_minutes",
        "1m",
        "ema_rsi",
        SYNTHETIC,
        {"rsi_entry_below": 55},
        EXITS | {MARKET_ENTRY, STOP_GAP, TAKE_PROFIT_GAP},
    ),
    Case(
        "synthetic-ema_rsi-limit",
        "synthetic_minutes",
        "1m",
        "ema_rsi",
        SYNTHETIC,
        {"rsi_entry_below": 55, "limit_offset_pct": 0.01},
        EXITS | {LIMIT_MARKETABLE, LIMIT_GAPPED, LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT, STOP_GAP},
    ),
    Case(
        "synthetic-lgbm_threshold-market",
        "synthetic_minutes",
        "1m",
        "lgbm_threshold",
        SYNTHETIC,
        paths=EXITS | {MARKET_ENTRY},
    ),
    Case(
        "synthetic-lgbm_threshold-limit",
        "synthetic_minutes",
        "1m",
        "lgbm_threshold",
        SYNTHETIC,
        {"limit_offset_pct": 0.01},
        EXITS | {LIMIT_MARKETABLE, LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT},
    ),
    Case(
        "hourly-ema_rsi-market",
        "btc_hourly",
        "1h",
        "ema_rsi",
        HOURLY,
        {"rsi_entry_below": 50},
        EXITS | {MARKET_ENTRY},
        shared_data=True,
    ),
    Case(
        "hourly-ema_rsi-limit",
        "btc_hourly",
        "1h",
        "ema_rsi",
        HOURLY,
        {"rsi_entry_below": 50, "limit_offset_pct": 0.3},
        EXITS | {LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT, TAKE_PROFIT_GAP},
        shared_data=True,
    ),
    Case(
        "hourly-lgbm_threshold-market",
        "btc_hourly",
        "1h",
        "lgbm_threshold",
        HOURLY,
        paths=EXITS | {MARKET_ENTRY},
        shared_data=True,
    ),
    Case(
        "hourly-lgbm_threshold-limit",
        "btc_hourly",
        "1h",
        "lgbm_threshold",
        HOURLY,
        {"limit_offset_pct": 0.3},
        EXITS | {LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT},
        shared_data=True,
    ),
    Case(
        "synthetic-ema_rsi-market-exits",
        "synthetic_minutes",
        "1m",
        "ema_rsi",
        SYNTHETIC.model_copy(update={"trailing_stop_pct": 0.06}),
        {"rsi_entry_below": 55, "exit_rsi_above": 57},
        STRATEGY_EXITS | {MARKET_ENTRY, STOP_GAP, TRAILING_GAP},
        reasons=EXIT_REASONS,
    ),
    Case(
        "synthetic-ema_rsi-limit-exits",
        "synthetic_minutes",
        "1m",
        "ema_rsi",
        SYNTHETIC.model_copy(update={"trailing_stop_pct": 0.06}),
        {"rsi_entry_below": 55, "limit_offset_pct": 0.01, "exit_rsi_above": 57},
        STRATEGY_EXITS | {LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT, STRATEGY_CANCEL},
        reasons=("take_profit", "stop_loss", "strategy", "trailing_stop"),
    ),
    Case(
        "hourly-ema_rsi-market-exits",
        "btc_hourly",
        "1h",
        "ema_rsi",
        HOURLY.model_copy(update={"trailing_stop_pct": 2.0}),
        {"rsi_entry_below": 50, "exit_rsi_above": 65},
        STRATEGY_EXITS | {MARKET_ENTRY},
        shared_data=True,
        reasons=EXIT_REASONS,
    ),
    Case(
        "gappy-ema_rsi-market",
        "gappy_minutes",
        "1m",
        "ema_rsi",
        GAPPY,
        {"rsi_entry_below": 50},
        EXITS | {MARKET_ENTRY, STOP_GAP, TAKE_PROFIT_GAP, TIMEOUT_OPEN},
        shared_data=True,
    ),
    Case(
        "gappy-ema_rsi-limit",
        "gappy_minutes",
        "1m",
        "ema_rsi",
        GAPPY,
        {"rsi_entry_below": 50, "limit_offset_pct": 0.1},
        EXITS | {LIMIT_MARKETABLE, LIMIT_GAPPED, LIMIT_INSIDE, RULE_5, MAKER_TIMEOUT, TIMEOUT_OPEN},
        shared_data=True,
    ),
]


def probabilities(rows: int) -> np.ndarray:
    """A deterministic stand-in for a model: uniform, none for the first 30 candles."""
    values = np.random.default_rng(11).random(rows)
    values[:30] = np.nan
    return values


def paths(
    result: BacktestResult, candles: pd.DataFrame, bot: BotConfig, *, limit: bool
) -> Counter[str]:
    """Which rules of the fill model the run's fills went through."""
    opens = candles["open"].to_numpy()
    highs = candles["high"].to_numpy()
    starts = candles["start_ms"].to_numpy()
    found: Counter[str] = Counter(
        MAKER_TIMEOUT if u.reason == "maker_timeout" else STRATEGY_CANCEL
        for u in result.unfilled_entries
    )
    fills = {(f.time_ms, f.price, f.quantity, f.is_entry): f for f in result.fills}
    for trade in result.trades:
        entry = fills[(trade.entry_time_ms, trade.entry_price, trade.quantity, True)]
        exit_ = fills[(trade.exit_time_ms, trade.exit_price, trade.quantity, False)]
        entry_at_open = entry.time_ms == starts[entry.row]
        if not limit:
            found[MARKET_ENTRY] += 1
        elif not entry_at_open:
            found[LIMIT_INSIDE] += 1
        else:
            found[LIMIT_MARKETABLE if entry.price == opens[entry.row] else LIMIT_GAPPED] += 1
        exit_at_open = exit_.time_ms == starts[exit_.row]
        at_open, inside = {
            "stop_loss": (STOP_GAP, STOP_INSIDE),
            "take_profit": (TAKE_PROFIT_GAP, TAKE_PROFIT_INSIDE),
            "timeout_exit": (TIMEOUT_OPEN, TIMEOUT_CLOSE),
            "market_exit": (STRATEGY_EXIT, STRATEGY_EXIT),
        }[exit_.role]
        if trade.exit_reason == "trailing_stop":
            at_open, inside = TRAILING_GAP, TRAILING_INSIDE
        found[at_open if exit_at_open else inside] += 1
        take_profit, _ = barrier_prices(
            Side.BUY, trade.entry_price, bot.take_profit_pct, bot.stop_loss_pct
        )
        if exit_.row == entry.row:
            found[ENTRY_CANDLE_EXIT] += 1
        if exit_.role == "stop_loss" and not exit_at_open and highs[exit_.row] >= take_profit:
            found[TIE] += 1
        if not entry_at_open and highs[entry.row] >= take_profit:
            assert not (exit_.row == entry.row and exit_.role == "take_profit")
            found[RULE_5] += 1
    return found


def first_difference(left: tuple[Any, ...], right: tuple[Any, ...]) -> str:
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return f"first difference at {index}:\n  fast:       {a}\n  backtrader: {b}"
    return f"lengths differ: fast {len(left)}, backtrader {len(right)}"


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case, id=case.name, marks=[pytest.mark.shared_data] if case.shared_data else []
        )
        for case in CASES
    ],
)
def test_fast_engine_and_backtrader_trade_identically(
    case: Case, request: pytest.FixtureRequest
) -> None:
    candles: pd.DataFrame = request.getfixturevalue(case.candles)
    loaded: LoadedStrategy = request.getfixturevalue(case.strategy)
    features = compute_features(candles, default_spec())
    model = probabilities(len(candles)) if loaded.cls.model is not None else None
    results = [
        engine(
            candles,
            loaded.create(case.parameters),
            case.config,
            symbol="BTCUSD",
            timeframe=case.timeframe,
            features=features,
            probabilities=model,
            fees=FEES,
            strategy_hash=loaded.content_hash,
        )
        for engine in (run_backtest, run_backtrader)
    ]
    fast, reference = results

    assert fast.trades == reference.trades, first_difference(fast.trades, reference.trades)
    assert fast.fills == reference.fills, first_difference(fast.fills, reference.fills)
    assert fast.unfilled_entries == reference.unfilled_entries, first_difference(
        fast.unfilled_entries, reference.unfilled_entries
    )
    assert fast.equity.equals(reference.equity)
    assert fast.metrics == reference.metrics
    still_open = [
        (p.seq, p.status, p.created_at_ms, p.opened_at_ms, p.entry_price, p.quantity)
        for p in fast.open_positions
    ]
    assert still_open == [
        (p.seq, p.status, p.created_at_ms, p.opened_at_ms, p.entry_price, p.quantity)
        for p in reference.open_positions
    ]

    reasons = Counter(trade.exit_reason for trade in fast.trades)
    assert min(reasons[r] for r in case.reasons) >= 5, reasons
    found = paths(fast, candles, case.config, limit="limit_offset_pct" in case.parameters)
    missing = sorted(case.paths - {name for name, count in found.items() if count})
    assert not missing, f"the case never exercised: {missing} (found {dict(found)})"
