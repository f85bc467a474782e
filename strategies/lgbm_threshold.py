"""Enter when the champion LightGBM model is confident enough.

The model predicts the probability that a position opened at the next candle's open hits
its take-profit before its stop-loss or timeout (the triple-barrier label); the strategy
enters when that probability exceeds the bot's `confidence_threshold`.
"""

from typing import TYPE_CHECKING

import numpy as np

from tradepipe.strategy import DecisionContext, Enter, ModelRef, Strategy, StrategyParameters

if TYPE_CHECKING:  # annotations only: loading the file imports no pandas
    import numpy.typing as npt
    import pandas as pd

    from tradepipe.botconfig import BotConfig


class LgbmThresholdParameters(StrategyParameters):
    # 0 enters at market (next open); above 0 places a limit this far below the close.
    limit_offset_pct: float = 0.0


class LgbmThreshold(Strategy[LgbmThresholdParameters]):
    Parameters = LgbmThresholdParameters
    model = ModelRef("btcusdt_1m_triple_barrier", "champion")

    def on_candle(self, context: DecisionContext) -> Enter | None:
        probability = context.model_probability
        if probability is None or not context.can_enter:
            return None
        if probability <= context.config.confidence_threshold:
            return None
        offset = self.parameters.limit_offset_pct
        reason = f"p={probability:.3f}"
        if offset > 0:
            return Enter(limit_price=context.candle.close * (1 - offset / 100), reason=reason)
        return Enter(reason=reason)

    def decision_rows(
        self,
        features: "pd.DataFrame",
        probabilities: "npt.NDArray[np.float64] | None",
        config: "BotConfig",
    ) -> "npt.NDArray[np.bool_]":
        """The rows whose probability passes the bot's threshold (a backtest calls
        on_candle only there); none without a model. NaN (no prediction) compares False."""
        if probabilities is None:
            return np.zeros(len(features), dtype=bool)
        return probabilities > config.confidence_threshold
