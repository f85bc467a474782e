"""Model quality: the same figures at training (the reference) and on live decisions.

Pure functions, no I/O. Training calls `build_reference` on its validation window and stores
the result with the model (`quality_reference.json`); the live side labels the decisions the
engine recorded once they mature (`live_outcomes`: the kernel's triple-barrier labels over
the recorded candles, with each decision's own bot config) and compares (`live_quality`).

Definitions, identical on both sides:
- `auc`: Mann-Whitney, average ranks for ties; NaN with one class only.
- `precision_at_threshold`: take-profit rate of the rows with probability above the bot's
  `confidence_threshold` (what the consuming strategy enters on); NaN when none is.
- `hit_rate`: share of rows where that call (enter or not) matches the outcome.
- calibration: CALIBRATION_BINS equal-width probability bins, each with its row count, mean
  probability and take-profit rate; `calibration_error` is their count-weighted mean gap.
- drift: a `Distribution` keeps the training values' decile edges and the fraction in each
  bin; PSI = sum((live - train) * ln(live / train)) over the bins, fractions floored at
  PSI_FLOOR so an empty bin is a large but finite term. Below 0.1 is usually read as no
  shift, above 0.25 as a large one. NaN values (a feature's warm-up) are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradepipe.botconfig import BotConfig
from tradepipe.labels import labels_for_bot

__all__ = [
    "CALIBRATION_BINS",
    "DISTRIBUTION_BINS",
    "PSI_FLOOR",
    "REFERENCE_FORMAT",
    "CalibrationBin",
    "Distribution",
    "LiveQuality",
    "QualityError",
    "QualityReference",
    "auc",
    "build_reference",
    "calibration_bins",
    "classification_figures",
    "live_outcomes",
    "live_quality",
    "psi",
    "quality_over_time",
    "row_thresholds",
]

CALIBRATION_BINS = 10
DISTRIBUTION_BINS = 10
PSI_FLOOR = 1e-4
REFERENCE_FORMAT = 1
FIGURES = ("auc", "precision_at_threshold", "hit_rate", "calibration_error", "positive_rate")

FloatArray = npt.NDArray[np.float64]
CandleSource = Callable[[str, str], pd.DataFrame]


class QualityError(ValueError):
    """Input the quality figures cannot be computed from; the message says what to fix."""


def auc(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Mann-Whitney AUC with average ranks for ties (equal scores count one half)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = pd.Series(p).rank(method="average").to_numpy(dtype=np.float64)
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_probability: float  # NaN when empty
    positive_rate: float  # NaN when empty


def calibration_bins(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Equal-width bins over [0, 1]; the last bin includes 1."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    result = []
    for index in range(bins):
        inside = which == index
        count = int(inside.sum())
        result.append(
            CalibrationBin(
                lower=index / bins,
                upper=(index + 1) / bins,
                count=count,
                mean_probability=float(p[inside].mean()) if count else math.nan,
                positive_rate=float(y[inside].mean()) if count else math.nan,
            )
        )
    return result


def classification_figures(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, threshold: float | npt.ArrayLike
) -> dict[str, float]:
    """FIGURES plus signal_rate and rows; `threshold` is one value or one per row (rows of
    several bots sharing a model, each with its own confidence_threshold)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise QualityError(f"{len(y)} labels for {len(p)} probabilities: one label per row")
    if len(y) and not (np.isin(y, (0.0, 1.0)).all() and np.isfinite(p).all()):
        raise QualityError("labels must be 0 or 1 and probabilities finite: drop unlabelled rows")
    if len(y) == 0:
        return {name: math.nan for name in FIGURES} | {"signal_rate": math.nan, "rows": 0.0}
    chosen = p > np.broadcast_to(np.asarray(threshold, dtype=np.float64), p.shape)
    bins = calibration_bins(y, p)
    gap = sum(b.count * abs(b.mean_probability - b.positive_rate) for b in bins if b.count)
    return {
        "auc": auc(y, p),
        "precision_at_threshold": float(y[chosen].mean()) if chosen.any() else math.nan,
        "hit_rate": float((chosen == (y == 1)).mean()),
        "calibration_error": gap / len(y),
        "positive_rate": float(y.mean()),
        "signal_rate": float(chosen.mean()),
        "rows": float(len(y)),
    }


@dataclass(frozen=True, slots=True)
class Distribution:
    """Training values of one quantity: interior bin edges (bins are (-inf, e0], (e0, e1],
    ..., (e_last, inf)) and the fraction of the defined values in each bin."""

    edges: tuple[float, ...]
    fractions: tuple[float, ...]
    count: int  # defined values
    missing_fraction: float  # NaN values among all

    @classmethod
    def of(cls, values: npt.ArrayLike, bins: int = DISTRIBUTION_BINS) -> Distribution:
        raw = np.asarray(values, dtype=np.float64)
        defined = raw[np.isfinite(raw)]
        if len(defined) == 0:
            raise QualityError("no defined value to take a distribution of")
        quantiles = np.quantile(defined, np.arange(1, bins) / bins)
        edges = np.unique(quantiles)  # a discrete quantity repeats some deciles
        return cls(
            edges=tuple(float(edge) for edge in edges),
            fractions=tuple(float(f) for f in _fractions(edges, defined)),
            count=len(defined),
            missing_fraction=1 - len(defined) / len(raw),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "fractions": list(self.fractions),
            "count": self.count,
            "missing_fraction": self.missing_fraction,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Distribution:
        edges = tuple(float(edge) for edge in data["edges"])
        fractions = tuple(float(f) for f in data["fractions"])
        if len(fractions) != len(edges) + 1 or list(edges) != sorted(set(edges)):
            raise QualityError("a distribution needs increasing edges and one fraction more")
        return cls(edges, fractions, int(data["count"]), float(data["missing_fraction"]))


def _fractions(edges: FloatArray, values: FloatArray) -> FloatArray:
    bins = np.searchsorted(edges, values, side="left")  # edges[i-1] < value <= edges[i]
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(np.float64)
    fractions: FloatArray = counts / len(values)
    return fractions


def psi(reference: Distribution, values: npt.ArrayLike) -> float:
    """Population stability index of `values` against `reference`; NaN without a defined
    value."""
    raw = np.asarray(values, dtype=np.float64)
    defined = raw[np.isfinite(raw)]
    if len(defined) == 0:
        return math.nan
    live = np.maximum(_fractions(np.asarray(reference.edges), defined), PSI_FLOOR)
    train = np.maximum(np.asarray(reference.fractions), PSI_FLOOR)
    return float(np.sum((live - train) * np.log(live / train)))


@dataclass(frozen=True)
class QualityReference:
    """What training measured on its validation window, kept with the model."""

    threshold: float
    figures: Mapping[str, float]
    calibration: tuple[CalibrationBin, ...]
    features: Mapping[str, Distribution]
    probability: Distribution

    def to_json(self) -> str:
        payload = {
            "format": REFERENCE_FORMAT,
            "threshold": self.threshold,
            "figures": dict(self.figures),
            "calibration": [
                {
                    "lower": b.lower,
                    "upper": b.upper,
                    "count": b.count,
                    "mean_probability": b.mean_probability,
                    "positive_rate": b.positive_rate,
                }
                for b in self.calibration
            ],
            "features": {name: d.to_dict() for name, d in self.features.items()},
            "probability": self.probability.to_dict(),
        }
        return json.dumps(payload, indent=2, sort_keys=True)  # NaN as NaN: Python reads it

    @classmethod
    def from_json(cls, text: str) -> QualityReference:
        try:
            data = json.loads(text)
            if data.get("format") != REFERENCE_FORMAT:
                raise QualityError(
                    f"quality reference format {data.get('format')!r}, this kernel reads "
                    f"{REFERENCE_FORMAT}: retrain the model to store a current one"
                )
            return cls(
                threshold=float(data["threshold"]),
                figures={k: float(v) for k, v in data["figures"].items()},
                calibration=tuple(CalibrationBin(**b) for b in data["calibration"]),
                features={k: Distribution.from_dict(v) for k, v in data["features"].items()},
                probability=Distribution.from_dict(data["probability"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if isinstance(error, QualityError):
                raise
            raise QualityError(f"unreadable quality reference: {error!r}") from None


def build_reference(
    features: pd.DataFrame,
    labels: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    threshold: float,
    *,
    training_features: pd.DataFrame | None = None,
) -> QualityReference:
    """The reference of a validation window: figures on (`labels`, `probabilities`), and
    the distribution of each feature (of `training_features`, default `features`) and of
    the probabilities."""
    y, p = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    distributions = training_features if training_features is not None else features
    return QualityReference(
        threshold=float(threshold),
        figures=classification_figures(y, p, threshold),
        calibration=tuple(calibration_bins(y, p)),
        features={str(name): Distribution.of(distributions[name]) for name in distributions},
        probability=Distribution.of(p),
    )


def live_outcomes(decisions: pd.DataFrame, candles: CandleSource) -> pd.DataFrame:
    """`decisions` (the decision log's rows) with `label` (1 take-profit, 0 stop-loss or
    timeout, -1 not matured or its candle not recorded) and `exit_time_ms`.

    Each (symbol, timeframe, bot config) is labelled over `candles(symbol, timeframe)`, the
    recorded candles of that series, with that config's barriers: a decision on candle i
    would enter at candle i+1's open, exactly as the labels of its training data.
    """
    result = decisions.copy()
    result["label"] = np.full(len(result), -1, dtype=np.int8)
    result["exit_time_ms"] = np.full(len(result), -1, dtype=np.int64)
    if result.empty:
        return result
    keys = ["symbol", "timeframe", "bot_config"]
    series: dict[tuple[str, str], pd.DataFrame] = {}
    for (symbol, timeframe, config_text), rows in result.groupby(keys, sort=False):
        try:
            config = BotConfig.model_validate(json.loads(str(config_text)))
        except ValueError as error:
            raise QualityError(f"decision rows with an unreadable bot config: {error}") from None
        key = (str(symbol), str(timeframe))
        if key not in series:
            series[key] = candles(*key)
        frame = series[key]
        if frame.empty:
            continue
        labels = labels_for_bot(frame, key[1], config)
        by_start = pd.Series(np.arange(len(frame)), index=frame["start_ms"].to_numpy())
        found = by_start.reindex(rows["candle_start_ms"].to_numpy())
        known = found.notna().to_numpy()
        positions = found.to_numpy()[known].astype(np.int64)
        targets = rows.index[known]
        result.loc[targets, "label"] = labels["label"].to_numpy()[positions]
        result.loc[targets, "exit_time_ms"] = labels["exit_time_ms"].to_numpy()[positions]
    return result


@dataclass(frozen=True)
class LiveQuality:
    """Figures of one model version's live decisions against its reference."""

    decisions: int  # with a probability
    matured: int  # of those, with an outcome
    figures: Mapping[str, float]  # classification_figures of the matured decisions
    calibration: tuple[CalibrationBin, ...]
    feature_psi: Mapping[str, float]  # NaN: feature not recorded or never defined
    prediction_psi: float
    reference: QualityReference | None = field(default=None, repr=False)

    @property
    def max_feature_psi(self) -> float:
        defined = [value for value in self.feature_psi.values() if not math.isnan(value)]
        return max(defined) if defined else math.nan

    def flat(self) -> dict[str, float]:
        """live/<figure>, val/<figure> (from the reference), counts and drift: what /metrics
        and MLflow record."""
        flat = {f"live/{name}": float(value) for name, value in self.figures.items()}
        if self.reference is not None:
            flat |= {f"val/{name}": float(self.reference.figures.get(name, math.nan))
                     for name in FIGURES}  # fmt: skip
        flat |= {
            "live/decisions": float(self.decisions),
            "live/matured": float(self.matured),
            "drift/prediction_psi": self.prediction_psi,
            "drift/max_feature_psi": self.max_feature_psi,
        }
        flat |= {f"drift/psi/{name}": value for name, value in self.feature_psi.items()}
        return flat


def live_quality(outcomes: pd.DataFrame, reference: QualityReference | None) -> LiveQuality:
    """Quality of `outcomes` (`live_outcomes` rows of one model version). Drift is over
    every decision with a probability (it needs no outcome); the classification figures
    over the matured ones, each at its bot's own confidence_threshold."""
    scored = outcomes[outcomes["probability"].notna()]
    matured = scored[scored["label"].to_numpy() >= 0]
    thresholds = row_thresholds(matured)
    labels = matured["label"].to_numpy(dtype=np.float64)
    probabilities = matured["probability"].to_numpy(dtype=np.float64)
    feature_psi: dict[str, float] = {}
    prediction_psi = math.nan
    if reference is not None:
        recorded = _recorded_features(scored)
        feature_psi = {
            name: psi(distribution, recorded[name]) if name in recorded else math.nan
            for name, distribution in reference.features.items()
        }
        prediction_psi = psi(reference.probability, scored["probability"].to_numpy())
    return LiveQuality(
        decisions=len(scored),
        matured=len(matured),
        figures=classification_figures(labels, probabilities, thresholds),
        calibration=tuple(calibration_bins(labels, probabilities)),
        feature_psi=feature_psi,
        prediction_psi=prediction_psi,
        reference=reference,
    )


def row_thresholds(rows: pd.DataFrame) -> FloatArray:
    """Each decision row's confidence_threshold, from its bot config."""
    # one parse per distinct config, not per row (a day of a 1 s bot is 86,400 rows)
    configs = rows["bot_config"].astype(str)
    by_config = {text: _threshold(text) for text in configs.unique()}
    thresholds: FloatArray = configs.map(by_config).to_numpy(dtype=np.float64).reshape(-1)
    return thresholds


def _threshold(config_text: str) -> float:
    return float(json.loads(config_text).get("confidence_threshold", 0.5))


def _recorded_features(decisions: pd.DataFrame) -> dict[str, FloatArray]:
    """Each recorded feature's values over `decisions` (rows of any feature specs)."""
    if decisions.empty:
        return {}
    # rows of one feature spec share its names: stack each spec's values as one matrix
    # (vectorised; the engine runs this in a thread that shares the GIL with trading)
    specs = decisions["feature_spec_hash"].astype(str).to_numpy()
    columns: dict[str, list[FloatArray]] = {}
    for spec in np.unique(specs).tolist():
        rows = decisions.loc[specs == spec]
        spec_names = [str(name) for name in rows["feature_names"].iloc[0]]
        widths = {len(values) for values in rows["feature_values"]}
        if widths != {len(spec_names)}:
            raise QualityError(
                f"decision rows of feature spec {spec[:12]} whose values do not match its "
                f"{len(spec_names)} feature names: the decision log is damaged"
            )
        matrix = np.vstack([np.asarray(v, dtype=np.float64) for v in rows["feature_values"]])
        for index, name in enumerate(spec_names):
            columns.setdefault(name, []).append(matrix[:, index])
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def quality_over_time(
    outcomes: pd.DataFrame, reference: QualityReference | None, bucket_ms: int
) -> list[tuple[int, LiveQuality]]:
    """`live_quality` per bucket of candle time ([k * bucket_ms, (k+1) * bucket_ms)), keyed
    by the bucket's end: the series a chart and MLflow's steps show."""
    if bucket_ms <= 0:
        raise QualityError(f"bucket must be positive: {bucket_ms} ms")
    if outcomes.empty:
        return []
    buckets = outcomes["candle_start_ms"].to_numpy() // bucket_ms
    return [
        (int(bucket + 1) * bucket_ms, live_quality(outcomes[buckets == bucket], reference))
        for bucket in np.unique(buckets).tolist()
    ]
