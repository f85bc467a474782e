"""Live quality per model version, from the evidence the engine recorded.

Reads the decision log (`tradepipe.marketdata.decisions`) for a window of candle time and
the candles the engine recorded (the candle store's `record_exchange` series, e.g.
binance-live), labels the decisions that have matured (`tradepipe.quality.live_outcomes`)
and computes, per model version, the live figures next to the validation ones the version's
training stored (`ModelRegistry.quality_reference`). One computation for every transport:
the engine's /metrics (a background thread), the `tradepipe models quality` command (which
also logs to MLflow with step = time) and the dashboard's Models page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tradepipe.guard import MaturedCalls, matured_calls
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import read_decisions
from tradepipe.quality import (
    LiveQuality,
    QualityReference,
    live_outcomes,
    live_quality,
    quality_over_time,
)

__all__ = [
    "DEFAULT_BUCKET_MS",
    "VersionQuality",
    "evaluation_steps",
    "quality_from_evidence",
    "version_qualities",
]

DEFAULT_BUCKET_MS = 3_600_000  # one point an hour on the chart and in MLflow

ReferenceLookup = Callable[[str, str], QualityReference | None]


@dataclass(frozen=True)
class VersionQuality:
    model: str
    version: str
    window_start_ms: int  # first decision's candle
    window_end_ms: int  # after the last decision's candle
    quality: LiveQuality  # over the whole window
    series: tuple[tuple[int, LiveQuality], ...]  # per bucket, keyed by the bucket's end (ms)
    # every matured call in candle order: what the guard rails judge (tradepipe.guard)
    calls: MaturedCalls | None = field(default=None, repr=False, compare=False)

    @property
    def reference(self) -> QualityReference | None:
        return self.quality.reference

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as null): what `tradepipe models quality --json` prints."""
        reference = self.reference

        def clean(values: Mapping[str, float]) -> dict[str, float | None]:
            return {key: None if math.isnan(value) else value for key, value in values.items()}

        return {
            "model": self.model,
            "version": self.version,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "decisions": self.quality.decisions,
            "matured": self.quality.matured,
            "live": clean(self.quality.figures),
            "validation": None if reference is None else clean(reference.figures),
            "feature_psi": clean(self.quality.feature_psi),
            "max_feature_psi": clean({"v": self.quality.max_feature_psi})["v"],
            "prediction_psi": clean({"v": self.quality.prediction_psi})["v"],
            "series": [
                {"end_ms": end, "matured": q.matured, **clean(q.flat())} for end, q in self.series
            ],
        }


def version_qualities(
    decisions: pd.DataFrame,
    candles: Callable[[str, str], pd.DataFrame],
    reference_of: ReferenceLookup,
    *,
    model: str | None = None,
    version: str | None = None,
    bucket_ms: int = DEFAULT_BUCKET_MS,
) -> list[VersionQuality]:
    """Per (model, version) among `decisions` (of `model`/`version` when given), sorted."""
    scored = decisions[decisions["model"].notna() & decisions["model_version"].notna()]
    if model is not None:
        scored = scored[scored["model"] == model]
    if version is not None:
        scored = scored[scored["model_version"] == str(version)]
    if scored.empty:
        return []
    outcomes = live_outcomes(scored.reset_index(drop=True), candles)
    result = []
    for (name, number), rows in outcomes.groupby(["model", "model_version"], sort=True):
        reference = reference_of(str(name), str(number))
        timeframes = {str(tf) for tf in rows["timeframe"]}
        last_candle = int(rows["candle_start_ms"].max())
        result.append(
            VersionQuality(
                model=str(name),
                version=str(number),
                window_start_ms=int(rows["candle_start_ms"].min()),
                window_end_ms=last_candle + _longest_ms(timeframes),
                quality=live_quality(rows, reference),
                series=tuple(quality_over_time(rows, reference, bucket_ms)),
                calls=matured_calls(rows),
            )
        )
    return sorted(result, key=lambda item: (item.model, int(item.version)))


def quality_from_evidence(
    decision_root: Path,
    market_data_root: Path,
    exchange: str,
    reference_of: ReferenceLookup,
    *,
    model: str | None = None,
    version: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    bucket_ms: int = DEFAULT_BUCKET_MS,
) -> list[VersionQuality]:
    """`version_qualities` of the decisions on candles in [start_ms, end_ms), labelled over
    the recorded candles of `exchange` from `start_ms` on (the outcomes of the window's last
    decisions lie after it)."""
    decisions = read_decisions(decision_root, start_ms=start_ms, end_ms=end_ms)
    store = MarketDataStore(market_data_root)

    def candles(symbol: str, timeframe: str) -> pd.DataFrame:
        return store.read_candles(exchange, symbol, timeframe, start_ms=start_ms)

    return version_qualities(
        decisions, candles, reference_of, model=model, version=version, bucket_ms=bucket_ms
    )


def evaluation_steps(item: VersionQuality) -> dict[int, dict[str, float]]:
    """What MLflow records for `item`: per bucket, its figures (live, validation, drift),
    step = the bucket's end in seconds since the epoch."""
    return {end // 1000: quality.flat() for end, quality in item.series}


def _longest_ms(timeframes: set[str]) -> int:
    from tradepipe.timeframes import parse_timeframe

    return max(parse_timeframe(name).milliseconds for name in timeframes)
