"""The kernel's risk limits in the backtester: a losing bot stops at its daily loss limit
until the next UTC day, at its max drawdown for good, and within its exposure cap."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.backtest import run_backtest
from tradepipe.botconfig import BotConfig
from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.orders import FeeSchedule
from tradepipe.risk import DAILY_LOSS, DAY_MS, MAX_DRAWDOWN, utc_day
from tradepipe.strategy import DecisionContext, Enter, Strategy

HOUR_MS = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)
# every trade: in at the open, out at the 1 % stop inside the candle: -10 - ~4 fees
LOSER = BotConfig(
    capital_per_trade=1_000,
    take_profit_pct=10,
    stop_loss_pct=1,
    max_holding_seconds=3 * 3_600,
    maker_order_timeout_seconds=3_600,
)


class Always(Strategy[Any]):
    def on_candle(self, context: DecisionContext) -> Enter | None:
        return Enter(reason="always") if context.can_enter else None


def falling(hours: int) -> pd.DataFrame:
    """Each hour opens where the last closed and falls 2 %: every entry hits its stop."""
    opens = 100.0 * 0.98 ** np.arange(hours)
    frame = pd.DataFrame(
        {
            "start_ms": T0 + HOUR_MS * np.arange(hours, dtype=np.int64),
            "open": opens,
            "high": opens,
            "low": opens * 0.98,
            "close": opens * 0.98,
            "volume": 1.0,
            "taker_buy_volume": 0.5,
            "trade_count": 3.0,
        }
    )
    return frame.loc[:, list(CANDLE_COLUMNS)]


def run(config: BotConfig, hours: int = 72) -> Any:
    return run_backtest(
        falling(hours), Always.create(), config, timeframe="1h", fees=FEES, initial_capital=1e4
    )


def per_day(result: Any) -> Counter[int]:
    return Counter(utc_day(trade.entry_time_ms) for trade in result.trades)


def test_without_limits_the_loser_trades_every_hour() -> None:
    result = run(LOSER)
    assert len(result.trades) == 71
    assert all(trade.exit_reason == "stop_loss" and trade.pnl < -10 for trade in result.trades)
    assert result.risk_breaches == () and result.entries_refused == 0


def test_a_daily_loss_limit_stops_the_bot_until_the_next_utc_day() -> None:
    result = run(LOSER.model_copy(update={"daily_loss_limit": 25.0}))
    days = per_day(result)
    # two losses of ~14 pass 25 each day; the first day's first hour is the decision only
    assert days == {utc_day(T0): 2, utc_day(T0) + 1: 2, utc_day(T0) + 2: 2}
    assert [b.limit for b in result.risk_breaches] == [DAILY_LOSS] * 3
    for breach in result.risk_breaches:
        assert breach.figures["day_pnl"] <= -25.0
        assert breach.until_ms == (utc_day(breach.time_ms) + 1) * DAY_MS
    # each day's loss is the sum of its closed trades, fees included
    first_day = [t.pnl for t in result.trades if utc_day(t.exit_time_ms) == utc_day(T0)]
    assert result.risk_breaches[0].figures["day_pnl"] == pytest.approx(sum(first_day))
    assert result.entries_refused > 0
    # the next day's first entry is decided at the close of the day's last candle, 00:00
    second_day = [t for t in result.trades if utc_day(t.entry_time_ms) == utc_day(T0) + 1]
    assert second_day[0].entry_time_ms == T0 + DAY_MS


def test_a_max_drawdown_stops_the_bot_for_the_rest_of_the_run() -> None:
    result = run(LOSER.model_copy(update={"max_drawdown_pct": 5.0}))  # of the 1000 base
    [breach] = result.risk_breaches
    assert breach.limit == MAX_DRAWDOWN and breach.until_ms is None
    assert breach.figures["drawdown_pct"] >= 5.0
    assert len(result.trades) == 4  # ~14 each: 56 is the first loss past 50
    assert sum(t.pnl for t in result.trades) <= -50.0


def test_the_symbol_exposure_cap_refuses_entries_past_it() -> None:
    patient = LOSER.model_copy(
        update={"max_open_positions": 3, "stop_loss_pct": 50, "max_symbol_exposure": 2_500.0}
    )
    result = run(patient, hours=12)
    assert len(result.open_positions) == 2  # a third 1000 would pass 2500
    assert result.entries_refused > 0
    unlimited = run(patient.model_copy(update={"max_symbol_exposure": None}), hours=12)
    assert len(unlimited.open_positions) == 3 and unlimited.entries_refused == 0
