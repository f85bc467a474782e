"""EMA trend with an RSI pullback: the rule-based default strategy (no model needed).

Buys when the fast EMA is above the slow one (an uptrend) and RSI has pulled back below a
threshold: a dip inside a trend. Bots fall back to this strategy when theirs is deleted.
"""

from tradepipe.strategy import DecisionContext, Enter, Strategy, StrategyParameters


class EmaRsiParameters(StrategyParameters):
    rsi_entry_below: float = 40.0
    # 0 enters at market (next open); above 0 places a limit this far below the close.
    limit_offset_pct: float = 0.0


class EmaRsi(Strategy[EmaRsiParameters]):
    Parameters = EmaRsiParameters
    # close / EMA ratios: close_ema_26 > close_ema_12 means EMA(12) > EMA(26).
    required_features = ("close_ema_12", "close_ema_26", "rsi_14")

    def on_candle(self, context: DecisionContext) -> Enter | None:
        if not context.can_enter:
            return None
        features = context.features
        uptrend = features["close_ema_26"] > features["close_ema_12"]
        if not uptrend or not features["rsi_14"] < self.parameters.rsi_entry_below:
            return None
        offset = self.parameters.limit_offset_pct
        if offset > 0:
            return Enter(limit_price=context.candle.close * (1 - offset / 100), reason="dip")
        return Enter(reason="dip in uptrend")
