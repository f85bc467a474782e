"""A strategy's `decision_rows`: the backtest asks it only there, and trades the same.

The reference for every comparison is the same strategy asked on every ready row, which
the engine does when `on_candle` is replaced on the instance (as the review's and the
look-ahead check's recorders do).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.backtest import BacktestError, BacktestResult, run_backtest
from tests.backtest.test_parity_random import FEES, Action, Scheduled, markets
from tradepipe.botconfig import BotConfig
from tradepipe.strategy import DecisionContext, Enter, Exit, LoadedStrategy, Strategy

CONFIG = BotConfig(
    capital_per_trade=1_000,
    take_profit_pct=0.3,
    stop_loss_pct=0.3,
    max_holding_seconds=1_800,
    maker_order_timeout_seconds=180,
)


class Narrowed(Scheduled):
    """Acts at the candles in `plan` and names `rows` (a superset of them) as its
    decision rows; counts the candles it is asked at."""

    rows: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
    asked: list[int]

    def on_candle(self, context: DecisionContext) -> Enter | Exit | None:
        self.asked.append(context.candle.start_ms)
        return super().on_candle(context)

    def decision_rows(
        self,
        features: pd.DataFrame,
        probabilities: npt.NDArray[np.float64] | None,
        config: BotConfig,
    ) -> npt.NDArray[np.bool_]:
        return self.rows


def _everywhere(strategy: Strategy[Any]) -> Strategy[Any]:
    """The same strategy asked on every ready row (the instance's own on_candle)."""
    strategy.on_candle = strategy.on_candle  # type: ignore[method-assign]
    return strategy


def _same(fast: BacktestResult, reference: BacktestResult) -> None:
    assert fast.trades == reference.trades
    assert fast.fills == reference.fills
    assert fast.unfilled_entries == reference.unfilled_entries
    assert fast.metrics == reference.metrics
    assert fast.open_positions == reference.open_positions


@settings(max_examples=150, deadline=None)
@given(markets(), st.data())
def test_narrowed_rows_trade_as_every_row(
    market: tuple[pd.DataFrame, dict[int, Action], BotConfig], data: st.DataObject
) -> None:
    candles, plan, config = market
    starts = candles["start_ms"].tolist()
    extra = data.draw(st.lists(st.booleans(), min_size=len(starts), max_size=len(starts)))
    rows = np.array([start in plan or more for start, more in zip(starts, extra, strict=True)])
    results = []
    for narrowed in (True, False):
        strategy = Narrowed.create()
        strategy.plan, strategy.rows, strategy.asked = plan, rows, []
        if not narrowed:
            _everywhere(strategy)
        results.append(run_backtest(candles, strategy, config, timeframe="1m", fees=FEES))
        expected = [s for s, row in zip(starts, rows, strict=True) if row] if narrowed else starts
        assert strategy.asked == expected
    _same(*results)


@pytest.mark.parametrize(
    "parameters, update",
    [
        ({}, {}),
        ({"exit_rsi_above": 60.0}, {"trailing_stop_pct": 0.2}),
        ({"limit_offset_pct": 0.05, "rsi_entry_below": 45.0}, {"max_open_positions": 3}),
    ],
)
def test_ema_rsi_decision_rows_trade_as_every_row(
    ema_rsi: LoadedStrategy,
    synthetic_minutes: pd.DataFrame,
    parameters: dict[str, float],
    update: dict[str, float],
) -> None:
    config = CONFIG.model_copy(update=update)
    fast = run_backtest(synthetic_minutes, ema_rsi.create(parameters), config, timeframe="1m")
    reference = run_backtest(
        synthetic_minutes, _everywhere(ema_rsi.create(parameters)), config, timeframe="1m"
    )
    assert len(fast.trades) > 20
    _same(fast, reference)


@pytest.mark.parametrize("probabilities", ["random", "none"])
def test_lgbm_threshold_decision_rows_trade_as_every_row(
    lgbm_threshold: LoadedStrategy, synthetic_minutes: pd.DataFrame, probabilities: str
) -> None:
    rng = np.random.default_rng(7)
    values = rng.random(len(synthetic_minutes))
    values[rng.random(len(values)) < 0.3] = np.nan
    given_values = values if probabilities == "random" else None
    config = CONFIG.model_copy(update={"confidence_threshold": 0.9})
    results = [
        run_backtest(
            synthetic_minutes, strategy, config, timeframe="1m", probabilities=given_values
        )
        for strategy in (lgbm_threshold.create(), _everywhere(lgbm_threshold.create()))
    ]
    assert (len(results[0].trades) > 20) == (probabilities == "random")
    _same(*results)


@pytest.mark.parametrize(
    "rows, problem",
    [
        (np.ones(3, dtype=bool), "bool of shape (3,)"),
        (np.ones(40), "float64 of shape (40,)"),
        ([True] * 40, None),
    ],
)
def test_bad_decision_rows_are_refused(rows: Any, problem: str | None) -> None:
    candles, _, config = _flat_market(40)
    strategy = Narrowed.create()
    strategy.plan, strategy.rows, strategy.asked = {}, rows, []
    if problem is None:  # a list of bools per candle is fine
        run_backtest(candles, strategy, config, timeframe="1m")
        assert len(strategy.asked) == 40
        return
    with pytest.raises(BacktestError, match="decision_rows returned") as error:
        run_backtest(candles, strategy, config, timeframe="1m")
    assert problem in str(error.value)
    assert "one bool per candle (40,)" in str(error.value)


def _flat_market(rows: int) -> tuple[pd.DataFrame, dict[int, Action], BotConfig]:
    start = 1_704_067_200_000 + 60_000 * np.arange(rows)
    candles = pd.DataFrame(
        {"start_ms": start, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0}
    )
    candles["volume"] = 1.0
    return candles, {}, CONFIG
