"""Strategy exits and trailing stops in the fast engine, on hand-computed hourly runs."""

from __future__ import annotations

from typing import Any

import pytest

from research.backtest import BacktestError, run_backtest
from tests.backtest.test_engine import CONFIG as SHORT
from tests.backtest.test_engine import FEES, HOUR_MS, T0, hourly
from tradepipe.strategy import DecisionContext, Enter, Exit, Strategy

CONFIG = SHORT.model_copy(update={"max_holding_seconds": 10 * 3_600})


class Plan(Strategy[Any]):
    """Answers `plan[row]` at the close of candle `row` (an Enter, an Exit or None)."""

    plan: dict[int, Enter | Exit] = {}  # noqa: RUF012 (set per instance)
    seen: list[tuple[int, ...]] = []  # noqa: RUF012 (set per instance)

    def on_candle(self, context: DecisionContext) -> Enter | Exit | None:
        row = (context.candle.start_ms - T0) // HOUR_MS
        self.seen.append(tuple(p.seq for p in context.active_positions))
        return self.plan.get(row)


def planned(**plan: Enter | Exit) -> Plan:
    strategy = Plan.create()
    strategy.plan = {int(row.lstrip("r")): decision for row, decision in plan.items()}
    strategy.seen = []
    return strategy


BARS = hourly(
    (100, 101, 99, 100),  # 0: enter
    (100, 104, 99, 102),  # 1: bought at 100
    (102, 106, 101, 105),  # 2
    (105, 107, 104, 106),  # 3: exit decided at the close
    (103, 104, 102, 103),  # 4: sold at the open, 103
    (103, 104, 102, 103),  # 5
)


def test_an_exit_sells_at_the_next_open_with_reason_strategy() -> None:
    result = run_backtest(
        BARS, planned(r0=Enter(), r3=Exit(reason="done")), CONFIG, timeframe="1h", fees=FEES
    )
    (trade,) = result.trades
    assert trade.exit_reason == "strategy"
    assert (trade.exit_time_ms, trade.exit_price) == (T0 + 4 * HOUR_MS, 103)
    assert trade.fees == pytest.approx(1000 * 0.002 + 10 * 103 * 0.002)
    assert result.fills[-1].role == "market_exit"


def test_an_exit_names_one_position_and_leaves_the_others() -> None:
    config = CONFIG.model_copy(update={"max_open_positions": 2})
    strategy = planned(r0=Enter(), r1=Enter(), r3=Exit(position_seq=2))
    result = run_backtest(BARS, strategy, config, timeframe="1h", fees=FEES)
    (trade,) = result.trades
    assert trade.entry_time_ms == T0 + 2 * HOUR_MS and trade.exit_reason == "strategy"
    assert [p.seq for p in result.open_positions] == [1]
    assert strategy.seen[3] == (1, 2)  # what the strategy saw when it decided


def test_an_exit_naming_no_open_position_is_a_clear_error() -> None:
    with pytest.raises(BacktestError, match=r"Plan.*Exit\(position_seq=7\).*open: 1"):
        run_backtest(BARS, planned(r0=Enter(), r3=Exit(position_seq=7)), CONFIG, timeframe="1h")


def test_an_exit_cancels_a_pending_limit_entry() -> None:
    strategy = planned(r0=Enter(limit_price=90.0), r1=Exit())
    result = run_backtest(BARS, strategy, CONFIG, timeframe="1h")
    (unfilled,) = result.unfilled_entries
    assert unfilled.reason == "strategy" and unfilled.cancelled_at_ms == T0 + 2 * HOUR_MS
    assert result.trades == ()


TRAIL = hourly(
    (100, 101, 99, 100),  # 0: enter
    (100, 104, 99, 103),  # 1: bought at 100; trail 98 -> 104 * 0.98 = 101.92
    (103, 108, 102.5, 107),  # 2: 101.92 not touched; trail -> 108 * 0.98 = 105.84
    (107, 107.5, 105, 106),  # 3: low 105 <= 105.84: sold at 105.84, trailing_stop
    (106, 107, 105, 106),  # 4
)


def test_a_trailing_stop_ratchets_with_closed_candles_highs() -> None:
    config = CONFIG.model_copy(update={"trailing_stop_pct": 2.0})
    result = run_backtest(TRAIL, planned(r0=Enter()), config, timeframe="1h", fees=FEES)
    (trade,) = result.trades
    assert trade.exit_reason == "trailing_stop"
    assert trade.exit_price == 108 * (1 - 2.0 / 100)
    assert trade.exit_time_ms == T0 + 4 * HOUR_MS  # inside candle 3: stamped at its end


def test_an_entry_sets_its_own_trailing_stop_and_a_looser_one_leaves_the_stop_loss() -> None:
    own = run_backtest(TRAIL, planned(r0=Enter(trailing_stop_pct=2.0)), CONFIG, timeframe="1h")
    assert own.trades[0].exit_reason == "trailing_stop"
    loose = CONFIG.model_copy(update={"trailing_stop_pct": 50.0})  # behind the 5 % stop
    result = run_backtest(TRAIL, planned(r0=Enter()), loose, timeframe="1h")
    assert result.trades == () and len(result.open_positions) == 1


def test_an_invalid_trailing_stop_on_an_entry_names_the_strategy() -> None:
    with pytest.raises(BacktestError, match=r"Plan.*invalid entry.*trailing_stop_pct"):
        run_backtest(TRAIL, planned(r0=Enter(trailing_stop_pct=-1.0)), CONFIG, timeframe="1h")


@pytest.mark.parametrize(
    ("bars", "plan", "update"),
    [
        (BARS, {"r0": Enter(), "r3": Exit()}, {}),
        (
            BARS,
            {"r0": Enter(), "r1": Enter(), "r3": Exit(position_seq=2)},
            {"max_open_positions": 2},
        ),
        (BARS, {"r0": Enter(limit_price=90.0), "r1": Exit()}, {}),
        (TRAIL, {"r0": Enter()}, {"trailing_stop_pct": 2.0}),
        (TRAIL, {"r0": Enter(trailing_stop_pct=2.0)}, {}),
    ],
    ids=["exit", "exit-one", "exit-pending", "trailing", "trailing-on-entry"],
)
def test_the_backtrader_reference_trades_the_hand_computed_runs_identically(
    bars: Any, plan: dict[str, Enter | Exit], update: dict[str, Any]
) -> None:
    from research.backtest.backtrader_adapter import run_backtrader

    config = CONFIG.model_copy(update=update)
    fast, reference = (
        engine(bars, planned(**plan), config, timeframe="1h", fees=FEES)
        for engine in (run_backtest, run_backtrader)
    )
    assert fast.trades == reference.trades and fast.trades + fast.unfilled_entries
    assert fast.fills == reference.fills
    assert fast.unfilled_entries == reference.unfilled_entries
