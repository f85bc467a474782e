"""Trading costs: the one definition of what a fill costs, shared by the paper broker,
the backtester and the promotion gates.

A trade pays two things: a fee (a fraction of the notional, maker or taker, see
`FeeSchedule`) and, on market orders, slippage (`slippage_bps`: the fill is that many basis
points worse than the price the order met; the rule itself is the fill model's,
`tradepipe.orders.rules.market_fill_price`). `PAPER_COSTS` are the paper broker's defaults
(Binance spot's base tier, 0.1 % maker and taker, plus 2 bps on market orders); the
`paper_*` settings override them (`paper_costs`).

Research judges a model at the costs its bots would pay: a spec may add costs on top of its
venue's, never remove them (`at_least`: the larger of the two, per component).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradepipe.orders.types import FeeSchedule, InvalidOrderError

if TYPE_CHECKING:
    from tradepipe.config import Settings

__all__ = ["PAPER_COSTS", "TradingCosts", "paper_costs"]


@dataclass(frozen=True, slots=True)
class TradingCosts:
    """Fee rates as fractions of the notional (0.001 is 0.1 %) and the slippage of market
    orders in basis points (2.0 is 0.02 %)."""

    maker_rate: float = 0.0
    taker_rate: float = 0.0
    slippage_bps: float = 0.0

    def __post_init__(self) -> None:
        self.fees  # noqa: B018 - validates the rates now, naming the bad one
        if not (math.isfinite(self.slippage_bps) and 0 <= self.slippage_bps < 10_000):
            raise InvalidOrderError(f"slippage_bps must be in [0, 10000): {self.slippage_bps}")

    @property
    def fees(self) -> FeeSchedule:
        return FeeSchedule(maker_rate=self.maker_rate, taker_rate=self.taker_rate)

    @property
    def round_trip(self) -> float:
        """What a market entry and a market exit cost together, as a fraction of the
        notional: the hurdle a trade's move must clear to make anything."""
        return 2 * (self.taker_rate + self.slippage_bps / 10_000)

    def at_least(self, other: TradingCosts) -> TradingCosts:
        """These costs raised, per component, to `other`'s: what a spec's own costs can
        add to its venue's, never taking anything away."""
        return TradingCosts(
            maker_rate=max(self.maker_rate, other.maker_rate),
            taker_rate=max(self.taker_rate, other.taker_rate),
            slippage_bps=max(self.slippage_bps, other.slippage_bps),
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "maker_rate": self.maker_rate,
            "taker_rate": self.taker_rate,
            "slippage_bps": self.slippage_bps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TradingCosts:
        return cls(**{name: float(data[name]) for name in cls.__dataclass_fields__})


PAPER_COSTS = TradingCosts(maker_rate=0.001, taker_rate=0.001, slippage_bps=2.0)


def paper_costs(settings: Settings | None = None) -> TradingCosts:
    """The paper broker's costs: `PAPER_COSTS`, each overridden by its `paper_*` setting."""
    if settings is None:
        return PAPER_COSTS
    chosen = {
        "maker_rate": settings.paper_maker_fee_rate,
        "taker_rate": settings.paper_taker_fee_rate,
        "slippage_bps": settings.paper_slippage_bps,
    }
    return TradingCosts(
        **{
            name: getattr(PAPER_COSTS, name) if value is None else value
            for name, value in chosen.items()
        }
    )
