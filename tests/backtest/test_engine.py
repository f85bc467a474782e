"""The fast engine: a hand-computed run, the records' consistency, warm-up, errors, and the
guarantees behind its speed-ups (skipped candles, reused context objects)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from research.backtest import BacktestError, TradeRecord, run_backtest
from research.backtest.engine import _Run
from tradepipe.botconfig import BotConfig
from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.enums import PositionStatus
from tradepipe.features import compute_features, default_spec
from tradepipe.orders import FeeSchedule
from tradepipe.strategy import DecisionContext, Enter, LoadedStrategy, Strategy

HOUR_MS = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)
CONFIG = BotConfig(
    capital_per_trade=1_000,
    take_profit_pct=10,
    stop_loss_pct=5,
    max_holding_seconds=3 * 3_600,
    maker_order_timeout_seconds=3_600,
)


def hourly(*bars: tuple[float, float, float, float]) -> pd.DataFrame:
    frame = pd.DataFrame(bars, columns=["open", "high", "low", "close"])
    frame.insert(0, "start_ms", T0 + HOUR_MS * np.arange(len(bars), dtype=np.int64))
    frame["volume"] = 1.0
    frame["taker_buy_volume"] = 0.5
    frame["trade_count"] = 3.0
    return frame.loc[:, list(CANDLE_COLUMNS)]


class Scripted(Strategy[Any]):
    """Enters at market at the close of the candles starting at `entries`."""

    entries: frozenset[int] = frozenset()
    limit_price: float | None = None

    def on_candle(self, context: DecisionContext) -> Enter | None:
        if context.can_enter and context.candle.start_ms in self.entries:
            return Enter(limit_price=self.limit_price, reason="scripted")
        return None


def scripted(*rows: int, limit_price: float | None = None) -> Scripted:
    strategy = Scripted.create()
    strategy.entries = frozenset(T0 + row * HOUR_MS for row in rows)
    strategy.limit_price = limit_price
    return strategy


TINY = hourly(
    (100, 101, 99, 100),  # 0: decide to enter
    (100, 104, 99, 102),  # 1: bought 10 at the open, 100 (taker fee 2)
    (102, 111, 101, 108),  # 2: take-profit 110 touched: sold at 110 (maker fee 1.1)
    (108, 109, 107, 108),  # 3: decide to enter
    (100, 101, 94, 96),  # 4: bought 10 at 100 (fee 2), stop 95 touched: sold at 95 (fee 1.9)
    (96, 97, 95.5, 96),  # 5: flat
)


def test_a_tiny_run_matches_the_hand_computed_trades_equity_and_metrics() -> None:
    result = run_backtest(TINY, scripted(0, 3), CONFIG, timeframe="1h", fees=FEES)

    first, second = result.trades
    assert (first.entry_time_ms, first.exit_time_ms) == (T0 + HOUR_MS, T0 + 3 * HOUR_MS)
    assert (first.entry_price, first.exit_price, first.quantity) == (100, 100 * 1.1, 10)
    assert first.exit_reason == "take_profit" and first.side == "buy"
    assert first.fees == pytest.approx(2 + 1.1) and first.pnl == pytest.approx(100 - 3.1)
    assert (second.entry_time_ms, second.exit_time_ms) == (T0 + 4 * HOUR_MS, T0 + 5 * HOUR_MS)
    assert (second.exit_reason, second.exit_price) == ("stop_loss", 100 * 0.95)
    assert second.pnl == pytest.approx(-50 - 3.9)

    hand = [1000, 1000 - 1002 + 10 * 102, 1096.9, 1096.9, 1043.0, 1043.0]
    assert result.equity.index.tolist() == TINY["start_ms"].tolist()
    assert result.equity.to_numpy() == pytest.approx(hand)
    returns = np.array(hand) / np.array([1000, *hand[:-1]]) - 1
    per_year = math.sqrt(365 * 24)
    metrics = result.metrics
    assert metrics.total_return == pytest.approx(0.043)
    assert metrics.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * per_year)
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert metrics.sortino == pytest.approx(returns.mean() / downside * per_year)
    assert metrics.max_drawdown == pytest.approx(1 - 1043.0 / 1096.9)
    assert metrics.win_rate == 0.5
    assert metrics.profit_factor == pytest.approx(96.9 / 53.9)
    assert metrics.exposure == 0.5  # candles 1, 2 and 4 held a position
    assert (metrics.trades, metrics.open_positions, metrics.unfilled_entries) == (2, 0, 0)
    assert metrics.fees == pytest.approx(7.0)
    assert math.fsum(t.pnl for t in result.trades) == pytest.approx(
        result.equity.iloc[-1] - result.initial_capital
    )

    frame = result.trades_frame()
    assert list(frame.columns) == [
        "entry_time",
        "exit_time",
        "side",
        "entry_price",
        "exit_price",
        "quantity",
        "exit_reason",
        "pnl",
        "fees",
    ]
    assert frame["entry_time"].tolist() == ["2024-01-01T01:00:00.000Z", "2024-01-01T04:00:00.000Z"]
    assert frame["exit_reason"].tolist() == ["take_profit", "stop_loss"]


def test_metrics_without_losses_are_json_safe() -> None:
    result = run_backtest(TINY, scripted(0), CONFIG, timeframe="1h", fees=FEES)
    assert result.metrics.profit_factor == math.inf
    as_dict = result.metrics.to_dict()
    assert as_dict["profit_factor"] is None and as_dict["trades"] == 1
    json.dumps(as_dict, allow_nan=False)


def test_positions_open_at_the_end_are_reported_not_traded() -> None:
    # entered at candle 4's open and still held; a market entry decided at the last close
    patient = CONFIG.model_copy(update={"stop_loss_pct": 10, "max_holding_seconds": 36_000})
    result = run_backtest(TINY, scripted(3, 5), patient, timeframe="1h", initial_capital=5_000)
    assert result.trades == ()
    statuses = [p.status for p in result.open_positions]
    assert statuses == [PositionStatus.ACTIVE]  # max_open_positions 1: the second was refused
    assert result.metrics.open_positions == 1
    assert result.metrics.exposure == pytest.approx(2 / 6)
    held = result.open_positions[0]
    cash = 5_000 - 1_000 - held.entry_fee
    assert result.equity.iloc[-1] == pytest.approx(cash + held.quantity * 96)
    assert result.metrics.fees == pytest.approx(held.entry_fee)


def test_a_market_entry_decided_at_the_last_close_stays_pending() -> None:
    result = run_backtest(TINY, scripted(5), CONFIG, timeframe="1h")
    [pending] = result.open_positions
    assert pending.status is PositionStatus.PENDING and result.metrics.exposure == 0


def test_a_maker_timeout_shorter_than_a_candle_never_fills() -> None:
    config = CONFIG.model_copy(update={"maker_order_timeout_seconds": 1_800})
    result = run_backtest(TINY, scripted(0, 3, limit_price=105.0), config, timeframe="1h")
    assert result.trades == () and result.fills == ()
    assert [u.reason for u in result.unfilled_entries] == ["maker_timeout", "maker_timeout"]
    first = result.unfilled_entries[0]
    assert (first.placed_at_ms, first.cancelled_at_ms) == (T0 + HOUR_MS, T0 + HOUR_MS + 1_800_000)


def test_trade_pnl_adds_up_to_the_equity_change(
    synthetic_minutes: pd.DataFrame, ema_rsi: LoadedStrategy
) -> None:
    config = BotConfig(
        capital_per_trade=500,
        take_profit_pct=0.1,
        stop_loss_pct=0.1,
        max_holding_seconds=900,
        maker_order_timeout_seconds=120,
        max_open_positions=2,
    )
    result = run_backtest(
        synthetic_minutes, ema_rsi.create({"rsi_entry_below": 50}), config, timeframe="1m"
    )
    assert len(result.trades) > 100 and not result.open_positions
    pnl = math.fsum(trade.pnl for trade in result.trades)
    assert pnl == pytest.approx(result.equity.iloc[-1] - 1_000, rel=1e-9, abs=1e-9)
    assert math.fsum(t.fees for t in result.trades) == pytest.approx(result.metrics.fees)
    entries = [f for f in result.fills if f.is_entry]
    assert len(entries) == len(result.trades) == len(result.fills) - len(entries)


@pytest.mark.parametrize(
    "parameters",
    [{"rsi_entry_below": 55}, {"rsi_entry_below": 55, "limit_offset_pct": 0.01}],
)
def test_skipping_quiet_candles_changes_nothing(
    synthetic_minutes: pd.DataFrame,
    ema_rsi: LoadedStrategy,
    parameters: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = BotConfig(
        capital_per_trade=1_000,
        take_profit_pct=0.08,
        stop_loss_pct=0.05,
        max_holding_seconds=630,
        maker_order_timeout_seconds=150,
        max_open_positions=3,
    )

    def run() -> Any:
        return run_backtest(
            synthetic_minutes, ema_rsi.create(parameters), config, timeframe="1m", fees=FEES
        )

    skipping = run()
    monkeypatch.setattr(_Run, "next_wake", lambda self, row, positions: row + 1)
    every_candle = run()
    assert skipping.trades == every_candle.trades and len(skipping.trades) > 100
    assert skipping.fills == every_candle.fills
    assert skipping.unfilled_entries == every_candle.unfilled_entries


class Recorder(Strategy[Any]):
    required_features = ("close_ema_26", "rsi_14")
    kept: ClassVar[list[DecisionContext]] = []
    features_kept: ClassVar[list[tuple[int, Mapping[str, float]]]] = []

    def on_candle(self, context: DecisionContext) -> Enter | None:
        if context.candle.start_ms % (7 * 60_000) == 0:
            self.kept.append(context)
        elif context.candle.start_ms % (5 * 60_000) == 0:
            self.features_kept.append((context.candle.start_ms, context.features))
        return None


def test_the_strategy_is_called_only_once_required_features_are_warm(
    synthetic_minutes: pd.DataFrame,
) -> None:
    candles = synthetic_minutes.iloc[:300].reset_index(drop=True)
    called: list[int] = []

    class Counting(Recorder):
        def on_candle(self, context: DecisionContext) -> Enter | None:
            called.append(context.candle.start_ms)
            return None

    run_backtest(candles, Counting.create(), CONFIG, timeframe="1m")
    features = compute_features(candles, default_spec())
    warm = features[["close_ema_26", "rsi_14"]].notna().all(axis=1)
    assert called == candles["start_ms"][warm].tolist()
    assert called[0] == candles["start_ms"][default_spec().warmup_by_feature["close_ema_26"]]


def test_kept_contexts_and_features_stay_frozen_at_their_candle(
    synthetic_minutes: pd.DataFrame,
) -> None:
    candles = synthetic_minutes.iloc[:400].reset_index(drop=True)
    Recorder.kept.clear()
    Recorder.features_kept.clear()
    run_backtest(candles, Recorder.create(), CONFIG, timeframe="1m")
    features = compute_features(candles, default_spec())
    assert len(Recorder.kept) > 40 and len(Recorder.features_kept) > 60
    rows = {start: row for row, start in enumerate(candles["start_ms"])}
    for context in Recorder.kept:
        row = rows[context.candle.start_ms]
        assert context.candle.close == candles["close"][row]
        assert context.features["rsi_14"] == features["rsi_14"][row]
        assert dict(context.features) == pytest.approx(features.iloc[row].to_dict(), nan_ok=True)
    for start, kept in Recorder.features_kept:
        assert kept["close_ema_26"] == features["close_ema_26"][rows[start]]


def test_the_context_carries_a_full_candle_and_the_models_probability() -> None:
    seen: list[tuple[Any, ...]] = []

    class Looking(Strategy[Any]):
        def on_candle(self, context: DecisionContext) -> Enter | None:
            c = context.candle
            seen.append((c.start_ms, c.end_ms, c.close, c.trade_count, context.model_probability))
            return None

    probabilities = np.array([np.nan, 0.25, 0.5, 0.75, 1.0, 0.0])
    run_backtest(TINY, Looking.create(), CONFIG, timeframe="1h", probabilities=probabilities)
    assert seen[0] == (T0, T0 + HOUR_MS, 100.0, 3, None)
    assert [s[4] for s in seen] == [None, 0.25, 0.5, 0.75, 1.0, 0.0]


class Failing(Strategy[Any]):
    def on_candle(self, context: DecisionContext) -> Enter | None:
        if context.candle.start_ms == T0 + 2 * HOUR_MS:
            raise ZeroDivisionError("the strategy's own bug")
        return None


def test_a_failing_strategy_is_named_with_the_candle() -> None:
    with pytest.raises(BacktestError) as raised:
        run_backtest(TINY, Failing.create(), CONFIG, timeframe="1h")
    message = str(raised.value)
    assert "Failing" in message and "test_engine.py" in message
    assert "2024-01-01T02:00:00.000Z" in message and "row 2" in message
    assert "ZeroDivisionError: the strategy's own bug" in message
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_a_strategy_returning_something_else_than_enter_is_refused() -> None:
    class Confused(Strategy[Any]):
        def on_candle(self, context: DecisionContext) -> Enter | None:
            return "buy"  # type: ignore[return-value]

    with pytest.raises(
        BacktestError, match=r"returned 'buy'.*Enter\(\.\.\.\), Exit\(\.\.\.\) or None"
    ):
        run_backtest(TINY, Confused.create(), CONFIG, timeframe="1h")


def test_an_invalid_limit_price_names_the_strategy() -> None:
    with pytest.raises(BacktestError, match=r"Scripted.*invalid entry.*limit_price"):
        run_backtest(TINY, scripted(1, limit_price=-5.0), CONFIG, timeframe="1h")


def _shifted() -> pd.DataFrame:
    starts = TINY["start_ms"].to_numpy().copy()
    starts[3] += 60_000
    return TINY.assign(start_ms=starts)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"candles": TINY.iloc[:0]}, "data too short: no candles"),
        ({"candles": TINY.iloc[::-1]}, "not increasing at row 1"),
        ({"candles": _shifted()}, "row 3 .* not aligned to the 1h timeframe"),
        ({"candles": TINY.drop(columns="start_ms")}, "start_ms is missing"),
        ({"timeframe": "1x"}, "unknown timeframe '1x'"),
        ({"probabilities": np.ones(3)}, r"shape \(3,\); expected one per candle \(6,\)"),
        ({"probabilities": np.full(6, 1.5)}, r"1.5 at row 0 is not in \[0, 1\]"),
        ({"features": pd.DataFrame({"x": [1.0]})}, "features have 1 rows for 6 candles"),
        ({"initial_capital": 0.0}, "initial_capital must be > 0"),
    ],
)
def test_bad_inputs_are_refused_by_name(change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"candles": TINY, "timeframe": "1h"} | change
    candles = arguments.pop("candles")
    with pytest.raises(BacktestError, match=message):
        run_backtest(candles, scripted(), CONFIG, **arguments)


def test_missing_or_never_defined_required_features_are_refused() -> None:
    class NeedsFlow(Strategy[Any]):
        required_features = ("taker_net_flow_10",)

        def on_candle(self, context: DecisionContext) -> Enter | None:
            return None

    with pytest.raises(BacktestError, match="requires features taker_net_flow_10, which"):
        run_backtest(TINY, NeedsFlow.create(), CONFIG, timeframe="1h", features=TINY[["open"]])
    no_taker = TINY.assign(taker_buy_volume=np.nan)
    with pytest.raises(BacktestError, match=r"data too short: 6 candles.*taker_net_flow_10"):
        run_backtest(no_taker, NeedsFlow.create(), CONFIG, timeframe="1h")


def test_trade_records_compare_by_value() -> None:
    record = TradeRecord(1, 2, "buy", 1.0, 2.0, 3.0, "take_profit", 2.9, 0.1)
    assert record == TradeRecord(1, 2, "buy", 1.0, 2.0, 3.0, "take_profit", 2.9, 0.1)
