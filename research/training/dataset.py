"""Candles -> features and triple-barrier labels -> the rows a model may learn from.

Features come from the kernel's batch implementation (the live engine's incremental one is
proven equal to it), labels from the kernel's triple-barrier labeller with the spec's
barriers and fees, i.e. the very fill rules the bot trades by. A row is usable when every
feature is past its warm-up and its label is decided (the last rows, whose horizon runs past
the data, are unlabelled and dropped, never guessed).

Features stay computed for every candle, not only usable rows: backtests predict on every
candle of their window, and the champion is re-featured with its own spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.training.errors import DatasetError
from research.training.spec import ModelSpec
from research.training.splits import MIN_ROWS
from tradepipe.features import CandleDataError, compute_features
from tradepipe.labels import LabelInputError, triple_barrier_labels
from tradepipe.timeframes import Timeframe

__all__ = ["Dataset", "build_dataset", "required_rows"]

IntArray = npt.NDArray[np.int64]
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Dataset:
    """Candles with their features, and the usable rows in time order.

    `rows` are positions into `candles`/`features`; `labels`, `start_ms` and `label_end_ms`
    run parallel to `rows` (label_end_ms: end of the candle the label's exit was decided on).
    """

    candles: pd.DataFrame
    features: pd.DataFrame
    rows: IntArray
    labels: npt.NDArray[np.int8]
    start_ms: IntArray
    label_end_ms: IntArray
    timeframe: Timeframe
    source: str

    def __len__(self) -> int:
        return len(self.rows)

    def matrix(self, positions: IntArray) -> pd.DataFrame:
        """Features of the usable rows at `positions` (positions into `rows`)."""
        return self.features.iloc[self.rows[positions]]

    def targets(self, positions: IntArray) -> npt.NDArray[np.int8]:
        return self.labels[positions]

    @property
    def positive_rate(self) -> float:
        return float(self.labels.mean())


def required_rows(spec: ModelSpec) -> int:
    """Usable rows the spec's splits need at the least (each window MIN_ROWS, plus gaps)."""
    step = spec.parsed_timeframe.seconds
    gap = spec.walk_forward.purge_seconds + spec.walk_forward.embargo_seconds
    gap_rows = math.ceil((gap + spec.labels.max_holding_seconds) / step)
    walk_forward = (spec.walk_forward.folds + 1) * (MIN_ROWS + gap_rows)
    validation = math.ceil(MIN_ROWS / spec.training.validation_fraction) + gap_rows
    early_stopping = math.ceil(MIN_ROWS / spec.training.early_stopping_fraction) + 2 * gap_rows
    return max(walk_forward, validation + early_stopping)


def build_dataset(candles: pd.DataFrame, spec: ModelSpec, *, source: str = "data") -> Dataset:
    """Features, labels and usable rows of `candles` under `spec`.

    Raises DatasetError (naming `source`) for empty data, missing values, too few usable
    rows for the spec's splits, or labels of a single class.
    """
    if candles.empty:
        raise DatasetError(f"{source}: no candles")
    candles = candles.reset_index(drop=True)
    _refuse_missing_values(candles, source)
    timeframe = spec.parsed_timeframe
    try:
        features = compute_features(candles, spec.features)
        labels = triple_barrier_labels(
            candles,
            timeframe,
            take_profit_pct=spec.labels.take_profit_pct,
            stop_loss_pct=spec.labels.stop_loss_pct,
            max_holding_seconds=spec.labels.max_holding_seconds,
            trailing_stop_pct=spec.labels.trailing_stop_pct,
        )
    except (CandleDataError, LabelInputError) as error:
        raise DatasetError(f"{source}: {error}") from None

    label = labels["label"].to_numpy(dtype=np.int8)
    usable = np.flatnonzero(label >= 0)
    usable = usable[usable >= spec.features.warmup].astype(np.int64)
    needed = required_rows(spec)
    if len(usable) < needed:
        raise DatasetError(
            f"{source}: {len(usable)} usable rows ({len(candles)} candles less the "
            f"{spec.features.warmup}-candle warm-up and the unlabelled tail); the spec's "
            f"{spec.walk_forward.folds} walk-forward folds and validation window need at "
            f"least {needed}: load a longer range or use fewer folds"
        )
    targets = label[usable]
    positives = int(targets.sum())
    if positives in (0, len(targets)):
        _refuse_one_class(spec, source, len(targets), positives)

    start = candles["start_ms"].to_numpy(dtype=np.int64)
    exit_index = labels["exit_index"].to_numpy(dtype=np.int64)[usable]
    return Dataset(
        candles=candles,
        features=features,
        rows=usable,
        labels=targets,
        start_ms=start[usable],
        label_end_ms=start[exit_index] + timeframe.milliseconds,
        timeframe=timeframe,
        source=source,
    )


def _refuse_missing_values(candles: pd.DataFrame, source: str) -> None:
    missing_columns = [name for name in ("start_ms", *_PRICE_COLUMNS) if name not in candles]
    if missing_columns:
        raise DatasetError(f"{source}: candles lack columns {missing_columns}")
    values = candles[list(_PRICE_COLUMNS)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bool(bad.any()):
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        stamp = pd.Timestamp(int(candles["start_ms"].iloc[row]), unit="ms", tz="UTC")
        raise DatasetError(
            f"{source}: missing or infinite values in the candle at {stamp.isoformat()}: "
            "repair or drop it before training"
        )


def _refuse_one_class(spec: ModelSpec, source: str, rows: int, positives: int) -> None:
    barriers = (
        f"take_profit_pct={spec.labels.take_profit_pct:g}, "
        f"stop_loss_pct={spec.labels.stop_loss_pct:g}, "
        f"max_holding_seconds={spec.labels.max_holding_seconds:g}"
    )
    if positives == 0:
        what, hint = "0 (stop-loss or timeout)", "lower take_profit_pct or hold longer"
    else:
        what, hint = "1 (take-profit)", "raise take_profit_pct or lower stop_loss_pct"
    raise DatasetError(
        f"{source}: all {rows} labels are {what} with {barriers}: a classifier needs both "
        f"classes; {hint} in [labels]"
    )
