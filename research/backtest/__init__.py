"""Backtests: the strategy and the kernel's order state machine over history.

`run_backtest` is the fast engine (the same `Strategy` class and the same `PositionBook`
the live engine uses, driven by a simulated clock). `run_backtrader`
(`research.backtest.backtrader_adapter`, not imported here: backtrader is slow to import)
runs the same decisions inside backtrader, whose broker executes the fills under the same
fill model: the independent reference the fast engine is tested identical to.
`research.backtest.strategy_file.backtest_strategy_file` is what the command line calls.
"""

from research.backtest.engine import DEFAULT_FEES, run_backtest
from research.backtest.errors import BacktestError
from research.backtest.records import (
    BacktestMetrics,
    BacktestResult,
    Fill,
    TradeRecord,
    UnfilledEntry,
)

__all__ = [
    "DEFAULT_FEES",
    "BacktestError",
    "BacktestMetrics",
    "BacktestResult",
    "Fill",
    "TradeRecord",
    "UnfilledEntry",
    "run_backtest",
]
