"""What a review found, as one frozen record with a JSON form (`to_dict`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from research.backtest.records import iso_utc
from research.review.compare import FEATURE_TOLERANCE, Divergence
from research.review.positions import PositionMatch

__all__ = ["ReviewReport", "Segment"]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of candles on which one strategy version, model version and config ran."""

    first_candle_ms: int
    last_candle_ms: int
    strategy: str
    strategy_hash: str
    model: str | None
    model_version: str | None
    decisions: int

    def to_dict(self) -> dict[str, object]:
        return {
            "first_candle": iso_utc(self.first_candle_ms),
            "last_candle": iso_utc(self.last_candle_ms),
            "strategy": self.strategy,
            "strategy_hash": self.strategy_hash,
            "model": self.model,
            "model_version": self.model_version,
            "decisions": self.decisions,
        }


@dataclass(frozen=True)
class ReviewReport:
    bot: str
    symbol: str
    timeframe: str
    since_ms: int
    until_ms: int
    segments: tuple[Segment, ...]
    features_compared: int
    max_feature_difference: float
    probabilities_compared: int
    decisions_compared: int
    decisions_agreeing: int
    positions_live: int
    positions_backtest: int
    matches: tuple[PositionMatch, ...]
    divergences: tuple[Divergence, ...] = field(default=())

    def _kinds(self, *kinds: str) -> list[Divergence]:
        return [d for d in self.divergences if d.kind in kinds]

    @property
    def features_equal(self) -> bool:
        return not self._kinds("features", "feature_spec")

    @property
    def probabilities_equal(self) -> bool:
        return not self._kinds("probability")

    @property
    def decisions_equal(self) -> bool:
        return not self._kinds("decision")

    @property
    def decision_agreement(self) -> float:
        compared = self.decisions_compared
        return self.decisions_agreeing / compared if compared else 1.0

    @property
    def matched_ratio(self) -> float:
        """Matched pairs over the positions of the side that has more (1.0: none at all)."""
        most = max(self.positions_live, self.positions_backtest)
        return len(self.matches) / most if most else 1.0

    @property
    def model_versions(self) -> tuple[str, ...]:
        versions = {s.model_version for s in self.segments if s.model_version is not None}
        return tuple(sorted(versions))

    @property
    def model(self) -> str | None:
        return next((s.model for s in self.segments if s.model is not None), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "bot": self.bot,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "since": iso_utc(self.since_ms),
            "until": iso_utc(self.until_ms),
            "segments": [s.to_dict() for s in self.segments],
            "feature_tolerance": FEATURE_TOLERANCE,
            "features_equal": self.features_equal,
            "features_compared": self.features_compared,
            "max_feature_difference": self.max_feature_difference,
            "probabilities_equal": self.probabilities_equal,
            "probabilities_compared": self.probabilities_compared,
            "decisions_equal": self.decisions_equal,
            "decisions_compared": self.decisions_compared,
            "decision_agreement": self.decision_agreement,
            "positions_live": self.positions_live,
            "positions_backtest": self.positions_backtest,
            "positions_matched": len(self.matches),
            "matched_ratio": self.matched_ratio,
            "matched": [m.to_dict() for m in self.matches],
            "divergences": [d.to_dict() for d in self.divergences],
        }
