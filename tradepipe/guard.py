"""Guard rails of a champion: when its live evidence says it no longer does what it was
promoted for. Pure functions, no I/O; the engine judges every champion after each quality
refresh (live/engine/model_guard.py) and rolls a breached one back.

A spec's `[guard]` section (`GuardRails`) travels with each version it registers (the
version tag GUARD_RAILS_TAG), so an engine reads the rails from the registry alone. Rails:

- `hit_rate_margin`, `precision_margin`: the live hit rate (share of calls, enter or not,
  that match the outcome) or precision (take-profit rate of the entries) is below the
  validation figure minus the margin. Judged by a one-sided exact binomial test over the
  latest `budget_outcomes` matured outcomes of the version (the evidence budget: old good
  outcomes cannot hide a decay for longer): with k successes of n trials and
  p0 = validation - margin, the p-value is P(X <= k) for X ~ Binomial(n, p0), and the rail
  is breached when it is below `alpha`. No verdict on fewer than `min_outcomes` trials
  (precision counts the entries among them).
- `max_drawdown_pct`: a bot's net PnL on the positions the version entered fell this far
  from its peak, in percent of the bot's capital (capital_per_trade x max_open_positions).
- `max_psi`: the largest feature PSI of the version's decisions (tradepipe.quality) is
  above the bound, over at least `min_outcomes` decisions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradepipe.quality import QualityError, row_thresholds

__all__ = [
    "BINOMIAL_TEST",
    "GUARD_RAILS_TAG",
    "Breach",
    "GuardRails",
    "MaturedCalls",
    "binomial_p_value",
    "drawdown_pct",
    "judge",
    "matured_calls",
]

GUARD_RAILS_TAG = "guard_rails"  # a model version's rails, as JSON
BINOMIAL_TEST = "one-sided exact binomial test"
BoolArray = npt.NDArray[np.bool_]


class GuardRails(BaseModel):
    """The `[guard]` section of a spec; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_outcomes: int = Field(100, ge=1, description="no verdict on fewer matured outcomes")
    budget_outcomes: int = Field(500, ge=1, description="the latest outcomes judged")
    hit_rate_margin: float | None = Field(None, ge=0, lt=1)
    precision_margin: float | None = Field(None, ge=0, lt=1)
    alpha: float = Field(0.01, gt=0, lt=0.5, description="significance of the binomial test")
    max_drawdown_pct: float | None = Field(None, gt=0, le=100)
    max_psi: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.budget_outcomes < self.min_outcomes:
            raise ValueError(
                f"budget_outcomes ({self.budget_outcomes}) must be at least min_outcomes "
                f"({self.min_outcomes})"
            )
        rails = (self.hit_rate_margin, self.precision_margin, self.max_drawdown_pct, self.max_psi)
        if all(rail is None for rail in rails):
            raise ValueError(
                "set at least one rail: hit_rate_margin, precision_margin, max_drawdown_pct "
                "or max_psi"
            )
        return self

    def to_tag(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)

    @classmethod
    def from_tag(cls, text: str) -> GuardRails:
        """The rails of a version's GUARD_RAILS_TAG; QualityError names what is wrong."""
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, ValidationError) as error:
            raise QualityError(f"unreadable {GUARD_RAILS_TAG} tag: {error}") from None


@dataclass(frozen=True)
class MaturedCalls:
    """One version's matured decisions in candle order: was it an entry, was it a win."""

    candle_start_ms: npt.NDArray[np.int64]
    entered: BoolArray
    take_profit: BoolArray

    @classmethod
    def empty(cls) -> MaturedCalls:
        none = np.zeros(0, dtype=bool)
        return cls(np.zeros(0, dtype=np.int64), none, none)

    def latest(self, count: int) -> MaturedCalls:
        return MaturedCalls(
            self.candle_start_ms[-count:], self.entered[-count:], self.take_profit[-count:]
        )

    def since(self, start_ms: int) -> MaturedCalls:
        """The calls on candles from `start_ms` on."""
        keep = self.candle_start_ms >= start_ms
        return MaturedCalls(self.candle_start_ms[keep], self.entered[keep], self.take_profit[keep])

    def __len__(self) -> int:
        return len(self.entered)


def matured_calls(outcomes: pd.DataFrame) -> MaturedCalls:
    """The matured rows of `live_outcomes` (one version's), each at its bot's threshold."""
    scored = outcomes[outcomes["probability"].notna()]
    rows = scored[scored["label"].to_numpy() >= 0].sort_values("candle_start_ms", kind="stable")
    thresholds = row_thresholds(rows)
    probabilities = rows["probability"].to_numpy(dtype=np.float64)
    return MaturedCalls(
        rows["candle_start_ms"].to_numpy(dtype=np.int64),
        probabilities > thresholds,
        rows["label"].to_numpy() == 1,
    )


@dataclass(frozen=True)
class Breach:
    """One rail the evidence crossed, with the numbers that show it."""

    rail: str  # hit_rate, precision, drawdown, drift
    live: float
    limit: float  # the bound the live figure crossed
    outcomes: int  # trials judged (matured outcomes; entries for precision; decisions)
    successes: int | None = None  # hits or take-profits (binomial rails)
    validation: float | None = None
    p_value: float | None = None
    alpha: float | None = None
    test: str | None = None
    subject: str | None = None  # the bot of a drawdown

    @property
    def summary(self) -> str:
        if self.test is not None:
            return (
                f"live {self.rail.replace('_', ' ')} {self.live:.3f} ({self.successes} of "
                f"{self.outcomes} matured outcomes) below validation {self.validation:.3f} "
                f"minus its margin ({self.limit:.3f}): {self.test} p = {self.p_value:.2g} "
                f"< alpha {self.alpha:g}"
            )
        if self.rail == "drawdown":
            return f"bot {self.subject} drawdown {self.live:.2f} % beyond {self.limit:g} %"
        return (
            f"feature drift: max PSI {self.live:.3f} above {self.limit:g} over "
            f"{self.outcomes} decisions"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"summary": self.summary}


def binomial_p_value(successes: int, trials: int, rate: float) -> float:
    """P(X <= successes) for X ~ Binomial(trials, rate): exact, summed in log space."""
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes of {trials} trials")
    if rate <= 0:
        return 1.0
    if rate >= 1:
        return 1.0 if successes == trials else 0.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    head = math.lgamma(trials + 1)
    terms = [
        head - math.lgamma(i + 1) - math.lgamma(trials - i + 1) + i * log_p + (trials - i) * log_q
        for i in range(successes + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in terms))


def drawdown_pct(net_pnls: Sequence[float], capital: float) -> float:
    """Deepest fall of the cumulative PnL (from 0) below its running peak, in % of capital."""
    if capital <= 0:
        raise ValueError(f"capital must be positive: {capital}")
    if not net_pnls:
        return 0.0
    equity = np.concatenate([[0.0], np.cumsum(np.asarray(net_pnls, dtype=np.float64))])
    return float(np.max(np.maximum.accumulate(equity) - equity) / capital * 100)


def judge(
    rails: GuardRails,
    calls: MaturedCalls,
    validation: Mapping[str, float] | None,
    *,
    max_feature_psi: float = math.nan,
    decisions: int = 0,
    drawdowns: Mapping[str, float] | None = None,
) -> tuple[Breach, ...]:
    """Every rail `rails` sets that the evidence crosses (empty: the champion holds).
    `validation`: the reference figures (None: no binomial rail can be judged)."""
    sample = calls.latest(rails.budget_outcomes)
    found: list[Breach] = []
    binomial = (
        ("hit_rate", rails.hit_rate_margin, sample.entered == sample.take_profit),
        ("precision", rails.precision_margin, sample.take_profit[sample.entered]),
    )
    for rail, margin, wins in binomial:
        reference = math.nan if validation is None else validation.get(rail + _SUFFIX[rail])
        if margin is None or reference is None or math.isnan(reference):
            continue
        breach = _binomial(rail, wins, reference, margin, rails)
        if breach is not None:
            found.append(breach)
    if rails.max_drawdown_pct is not None:
        for bot, drawdown in sorted((drawdowns or {}).items()):
            if drawdown > rails.max_drawdown_pct:
                found.append(Breach("drawdown", drawdown, rails.max_drawdown_pct, 0, subject=bot))
    enough = decisions >= rails.min_outcomes
    if rails.max_psi is not None and enough and max_feature_psi > rails.max_psi:
        found.append(Breach("drift", max_feature_psi, rails.max_psi, decisions))
    return tuple(found)


_SUFFIX = {"hit_rate": "", "precision": "_at_threshold"}  # the names in tradepipe.quality


def _binomial(
    rail: str, wins: BoolArray, reference: float, margin: float, rails: GuardRails
) -> Breach | None:
    trials, successes = len(wins), int(np.count_nonzero(wins))
    bound = reference - margin
    if trials < rails.min_outcomes or bound <= 0:
        return None
    p_value = binomial_p_value(successes, trials, bound)
    if p_value >= rails.alpha:
        return None
    return Breach(
        rail,
        live=successes / trials,
        limit=bound,
        outcomes=trials,
        successes=successes,
        validation=reference,
        p_value=p_value,
        alpha=rails.alpha,
        test=BINOMIAL_TEST,
    )
