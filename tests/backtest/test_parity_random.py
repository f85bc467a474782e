"""Both engines agree on small random markets built to hit the fill model's edges.

Prices on a coarse integer grid (so an open equals a limit price, a low equals the
previous close, a candle is flat), missing candles (so deadlines fall into gaps), entries
at random candles with limit prices around the close (marketable, resting, never touched),
and holding and maker timeouts that are and are not whole candles. Strategy exits at random
candles (every position, the oldest, the newest) and trailing stops (the bot's, or one set
on the entry) run through both engines too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st

from research.backtest import run_backtest
from research.backtest.backtrader_adapter import run_backtrader
from tradepipe.botconfig import BotConfig
from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.orders import FeeSchedule
from tradepipe.strategy import DecisionContext, Enter, Exit, Strategy

MINUTE_MS = 60_000
T0 = 1_704_067_200_000
FEES = FeeSchedule(maker_rate=0.0002, taker_rate=0.0007)


# A plan step: enter (limit offset from the close or None for market, trailing stop % for
# this entry or None for the bot's), or exit ("all", "oldest" or "newest" open position).
Action = tuple[str, int | None, float | None]


class Scheduled(Strategy[Any]):
    """Acts at the candles in `plan` (start_ms -> action)."""

    plan: dict[int, Action] = {}  # noqa: RUF012 (set per instance)

    def on_candle(self, context: DecisionContext) -> Enter | Exit | None:
        candle = context.candle
        if candle.start_ms not in self.plan:
            return None
        kind, offset, trail = self.plan[candle.start_ms]
        if kind == "enter":
            limit = None if offset is None else candle.close + offset
            return Enter(limit_price=limit, trailing_stop_pct=trail)
        positions = context.open_positions
        if kind == "all":
            return Exit()
        if not positions:
            return None
        return Exit(position_seq=positions[0 if kind == "oldest" else -1].seq)


@st.composite
def markets(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[int, Action], BotConfig]:
    rows = draw(st.integers(2, 40))
    start, close = T0, 100
    bars = []
    for _ in range(rows):
        start += MINUTE_MS * draw(st.sampled_from([1, 1, 1, 2, 4]))
        open_ = max(10, close + draw(st.integers(-3, 3)))
        close = max(10, open_ + draw(st.integers(-3, 3)))
        high = max(open_, close) + draw(st.integers(0, 3))
        low = max(1, min(open_, close) - draw(st.integers(0, 3)))
        bars.append((start, float(open_), float(high), float(low), float(close)))
    candles = pd.DataFrame(bars, columns=["start_ms", "open", "high", "low", "close"])
    candles["volume"] = 1.0
    candles["taker_buy_volume"] = np.nan
    candles["trade_count"] = np.nan
    entries = draw(st.lists(st.sampled_from([b[0] for b in bars]), max_size=rows, unique=True))
    trails = st.sampled_from([None, None, 1.0, 2.0, 4.0])
    actions = st.one_of(
        st.tuples(st.just("enter"), st.one_of(st.none(), st.integers(-2, 2)), trails),
        st.tuples(st.sampled_from(["all", "oldest", "newest"]), st.none(), st.none()),
    )
    plan = {entry: draw(actions) for entry in entries}
    config = BotConfig(
        capital_per_trade=1_000,
        take_profit_pct=draw(st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0])),
        stop_loss_pct=draw(st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0])),
        max_holding_seconds=draw(st.sampled_from([30, 60, 90, 120, 300, 900, 1_800])),
        maker_order_timeout_seconds=draw(st.sampled_from([30, 60, 150, 240])),
        max_open_positions=draw(st.integers(1, 3)),
        trailing_stop_pct=draw(trails),
    )
    return candles.loc[:, list(CANDLE_COLUMNS)], plan, config


@settings(max_examples=150, deadline=None)
@given(markets())
def test_engines_agree_on_random_markets(
    market: tuple[pd.DataFrame, dict[int, Action], BotConfig],
) -> None:
    candles, plan, config = market
    results = []
    for engine in (run_backtest, run_backtrader):
        strategy = Scheduled.create()
        strategy.plan = plan
        results.append(engine(candles, strategy, config, timeframe="1m", fees=FEES))
    fast, reference = results
    assert fast.trades == reference.trades
    assert fast.fills == reference.fills
    assert fast.unfilled_entries == reference.unfilled_entries
    assert fast.metrics == reference.metrics
    assert len(fast.open_positions) == len(reference.open_positions)
    reasons = {t.exit_reason for t in fast.trades} | {u.reason for u in fast.unfilled_entries}
    for reason in sorted(reasons):
        event(f"exit {reason}")  # --hypothesis-show-statistics: how often each rule ran
