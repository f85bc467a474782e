"""EMA trend with an RSI pullback: the rule-based default strategy (no model needed).

Buys when the fast EMA is above the slow one (an uptrend) and RSI has pulled back below a
threshold: a dip inside a trend. Bots fall back to this strategy when theirs is deleted.
With `exit_rsi_above` set it also sells what it holds once RSI has recovered above that
level (a strategy exit), instead of waiting for the take-profit, stop or timeout.
"""

from typing import TYPE_CHECKING

from tradepipe.strategy import DecisionContext, Enter, Exit, Strategy, StrategyParameters

if TYPE_CHECKING:  # annotations only: loading the file imports no pandas
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from tradepipe.botconfig import BotConfig


class EmaRsiParameters(StrategyParameters):
    rsi_entry_below: float = 40.0
    # 0 enters at market (next open); above 0 places a limit this far below the close.
    limit_offset_pct: float = 0.0
    # None never exits early; a level closes every open position when RSI rises above it.
    exit_rsi_above: float | None = None


class EmaRsi(Strategy[EmaRsiParameters]):
    Parameters = EmaRsiParameters
    # close / EMA ratios: close_ema_26 > close_ema_12 means EMA(12) > EMA(26).
    required_features = ("close_ema_12", "close_ema_26", "rsi_14")

    def on_candle(self, context: DecisionContext) -> Enter | Exit | None:
        features = context.features
        exit_above = self.parameters.exit_rsi_above
        recovered = exit_above is not None and features["rsi_14"] > exit_above
        if recovered and context.active_positions:
            return Exit(reason="rsi recovered")
        if not context.can_enter:
            return None
        uptrend = features["close_ema_26"] > features["close_ema_12"]
        if not uptrend or not features["rsi_14"] < self.parameters.rsi_entry_below:
            return None
        offset = self.parameters.limit_offset_pct
        if offset > 0:
            return Enter(limit_price=context.candle.close * (1 - offset / 100), reason="dip")
        return Enter(reason="dip in uptrend")

    def decision_rows(
        self,
        features: "pd.DataFrame",
        probabilities: "npt.NDArray[np.float64] | None",
        config: "BotConfig",
    ) -> "npt.NDArray[np.bool_]":
        """on_candle's own tests over the whole frame (a backtest calls it only there): it
        enters only in an uptrend below the RSI threshold, exits only once RSI is above
        `exit_rsi_above`. float64 as on_candle compares (NaN compares False in both)."""
        rsi = features["rsi_14"].to_numpy(dtype="float64")
        slow = features["close_ema_26"].to_numpy(dtype="float64")
        fast = features["close_ema_12"].to_numpy(dtype="float64")
        rows = (slow > fast) & (rsi < self.parameters.rsi_entry_below)
        exit_above = self.parameters.exit_rsi_above
        if exit_above is not None:
            rows |= rsi > exit_above
        return rows
