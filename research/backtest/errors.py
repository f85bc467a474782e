"""The one error a backtest raises for what its caller can fix."""

from __future__ import annotations


class BacktestError(ValueError):
    """Inputs a backtest cannot run on (candles, features, probabilities, parameters), or a
    strategy that failed during the run; the message names the input, or the strategy and
    the candle it failed on."""
