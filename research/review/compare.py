"""Item-by-item comparison of what the engine computed and what the backtest computes.

Features: the engine's incremental features (recorded per decision) against
`tradepipe.features.compute_features` over the recorded candles. The two implementations
are built to agree bit for bit; the review allows `FEATURE_TOLERANCE` (absolute, scaled by
the value when it is above 1), so a difference in the last bits of a large value is not a
divergence while any difference that could change a decision is.

Probabilities: the model version's output on the batch features against the probability
the engine recorded, with the same tolerance. Decisions: the strategy's answer (enter or
hold, and the limit price of an entry) on every candle where either side decided, within
the span the bot was live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from research.backtest.records import iso_utc

__all__ = [
    "FEATURE_TOLERANCE",
    "DecisionAnswer",
    "Divergence",
    "FeatureComparison",
    "compare_decisions",
    "compare_features",
    "compare_probabilities",
    "within_tolerance",
]

FEATURE_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class Divergence:
    """One difference between live and backtest: what (`kind`), on which candle or fill
    (`time`, ISO-8601 UTC), what differs (`detail`) and why (`cause`)."""

    kind: str
    time: str
    detail: str
    cause: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DecisionAnswer:
    """A strategy's answer on one candle: 'enter', 'exit', 'hold' or 'failed', with an entry's
    limit price (None: a market entry)."""

    kind: str
    limit_price: float | None = None


@dataclass(frozen=True, slots=True)
class FeatureComparison:
    compared: int  # candles compared
    max_difference: float  # the largest absolute difference seen (0.0 when none)
    divergences: tuple[Divergence, ...]

    @property
    def equal(self) -> bool:
        return not self.divergences


def within_tolerance(live: float, batch: float, tolerance: float = FEATURE_TOLERANCE) -> bool:
    """Equal within `tolerance`; NaN equals only NaN."""
    if math.isnan(live) or math.isnan(batch):
        return math.isnan(live) and math.isnan(batch)
    return abs(live - batch) <= tolerance * max(1.0, abs(batch))


def compare_features(
    live: pd.DataFrame, batch: pd.DataFrame, *, tolerance: float = FEATURE_TOLERANCE
) -> FeatureComparison:
    """`live` (recorded, indexed by candle start ms) against `batch` (same index, every
    recorded candle). One divergence per candle that differs, naming its features."""
    divergences: list[Divergence] = []
    missing = [name for name in live.columns if name not in batch.columns]
    if missing:
        return FeatureComparison(
            0,
            math.inf,
            (
                Divergence(
                    "features",
                    iso_utc(int(live.index[0])) if len(live) else "-",
                    f"recorded features {', '.join(missing)} are not in the batch spec",
                    "feature spec: the engine computed another spec than the review",
                ),
            ),
        )
    largest = 0.0
    names = [str(name) for name in live.columns]
    rows = {int(start): index for index, start in enumerate(batch.index)}
    expected_values = batch[names].to_numpy(dtype=np.float64)
    live_values = live.to_numpy(dtype=np.float64)
    for position, start in enumerate(live.index):
        start_ms = int(start)
        when = iso_utc(start_ms)
        row = rows.get(start_ms)
        if row is None:
            divergences.append(
                Divergence(
                    "features",
                    when,
                    "the engine decided on a candle that was not recorded",
                    "candle not recorded (evidence dropped or lost)",
                )
            )
            continue
        differing = []
        for column, name in enumerate(names):
            value = float(live_values[position, column])
            reference = float(expected_values[row, column])
            if not (math.isnan(value) or math.isnan(reference)):
                largest = max(largest, abs(value - reference))
            if not within_tolerance(value, reference, tolerance):
                differing.append(f"{name} live {value!r} batch {reference!r}")
        if differing:
            divergences.append(
                Divergence(
                    "features",
                    when,
                    "; ".join(differing),
                    "incremental and batch features differ (a warm-up the candles "
                    "recorded do not contain, or a parity bug)",
                )
            )
    return FeatureComparison(len(live), largest, tuple(divergences))


def compare_probabilities(
    live: pd.Series, backtest: pd.Series, *, tolerance: float = FEATURE_TOLERANCE
) -> tuple[int, tuple[Divergence, ...]]:
    """Recorded probabilities (by candle start) against the model's on the batch
    features; (candles compared, divergences). A missing value is NaN on either side."""
    divergences = []
    for start_ms, value in live.items():
        reference = float(backtest.get(start_ms, np.nan))
        recorded = float(value) if value is not None else math.nan
        if not within_tolerance(recorded, reference, tolerance):
            divergences.append(
                Divergence(
                    "probability",
                    iso_utc(int(str(start_ms))),
                    f"live {recorded!r} backtest {reference!r}",
                    "the model gave another probability (other features or another version)",
                )
            )
    return len(live), tuple(divergences)


def compare_decisions(
    live: Mapping[int, DecisionAnswer],
    backtest: Mapping[int, DecisionAnswer],
    open_positions: Mapping[int, tuple[int, int]] | None = None,
) -> tuple[int, int, tuple[Divergence, ...]]:
    """Answers on every candle from the first to the last live decision (the span the bot
    was live); (candles compared, candles agreeing, divergences). `open_positions` (live,
    backtest) per candle names the cause when the strategies saw different books."""
    if not live:
        return 0, 0, ()
    first, last = min(live), max(live)
    candles = sorted({*live, *(start for start in backtest if first <= start <= last)})
    agreeing = 0
    divergences = []
    for start_ms in candles:
        mine, theirs = live.get(start_ms), backtest.get(start_ms)
        if mine == theirs:
            agreeing += 1
            continue
        if mine is None:
            detail, cause = (
                f"backtest {_answer(theirs)}, the engine took no decision",
                "the bot did not decide on this candle (not running, or the candle missed)",
            )
        elif theirs is None:
            detail, cause = (
                f"live {_answer(mine)}, the backtest took no decision",
                "the backtest did not call the strategy (features not ready)",
            )
        elif mine.kind == "failed":
            detail, cause = (
                f"live failed, backtest {_answer(theirs)}",
                "the strategy raised or timed out live",
            )
        elif open_positions and len(set(open_positions.get(start_ms, (0, 0)))) > 1:
            held_live, held_backtest = open_positions[start_ms]
            detail, cause = (
                f"live {_answer(mine)}, backtest {_answer(theirs)}",
                f"the open positions differed (live {held_live}, backtest {held_backtest}): "
                "an earlier fill or exit differs (see the position divergences)",
            )
        else:
            detail, cause = (
                f"live {_answer(mine)}, backtest {_answer(theirs)}",
                "the strategy answered differently on the same inputs (it reads something "
                "besides its context: the wall clock, a random source, state of its own)",
            )
        divergences.append(Divergence("decision", iso_utc(start_ms), detail, cause))
    return len(candles), agreeing, tuple(divergences)


def _answer(answer: DecisionAnswer | None) -> str:
    if answer is None:
        return "none"
    if answer.kind == "enter" and answer.limit_price is not None:
        return f"enter (limit {answer.limit_price!r})"
    return answer.kind
