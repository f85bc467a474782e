"""Time-ordered splits with purge and embargo: the only place that decides which rows train.

Rows are the dataset's labelled rows in time order, each with its decision candle's start
and its label end (the end of the candle its triple-barrier exit was decided on). For a test
window starting at T, a row may train only if

    label_end <= T - embargo   and   start + purge <= T - embargo

The first condition is the purge proper: a row whose label saw prices inside the test window
would teach the model the test's answers (it matters on gappy data, where a label can span
longer than its nominal horizon). The second removes every row within `purge` of the window
whatever its exit, so that early take-profits and timeouts near the boundary are dropped
alike instead of biasing the tail of the training set towards the quicker barrier. The
embargo widens the gap further: features and outcomes stay correlated for longer than one
label (volatility regimes last hours), so rows just before the window are near-copies of it.

The same rule cuts the early-stopping tail off a training set, so early stopping is not
flattered by labels that overlap its own window either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from research.training.errors import DatasetError

__all__ = [
    "MIN_ROWS",
    "Split",
    "SplitError",
    "holdout_split",
    "trainable_before",
    "walk_forward_splits",
]

IntArray = npt.NDArray[np.int64]

# Fewest rows a training set, early-stopping set or test window may have: below this AUC and
# early stopping are noise. The dataset checks the data is long enough before splitting.
MIN_ROWS = 50


class SplitError(DatasetError):
    """Rows too few for the requested layout; the message says how many were needed."""


@dataclass(frozen=True, slots=True)
class Split:
    """Row positions (into the dataset's rows) that train and that test one model."""

    train: IntArray
    test: IntArray

    @property
    def test_start(self) -> int:
        return int(self.test[0])

    @property
    def test_stop(self) -> int:
        """Exclusive end position of the (contiguous) test rows."""
        return int(self.test[-1]) + 1


def trainable_before(
    start_ms: IntArray,
    label_end_ms: IntArray,
    boundary_ms: int,
    *,
    purge_ms: int,
    embargo_ms: int,
    stop: int | None = None,
) -> IntArray:
    """Positions (< `stop`) of rows allowed to train a model tested from `boundary_ms` on."""
    limit = len(start_ms) if stop is None else stop
    cutoff = boundary_ms - embargo_ms
    keep = (label_end_ms[:limit] <= cutoff) & (start_ms[:limit] + purge_ms <= cutoff)
    return np.flatnonzero(keep).astype(np.int64)


def holdout_split(
    start_ms: IntArray,
    label_end_ms: IntArray,
    test_fraction: float,
    *,
    purge_ms: int,
    embargo_ms: int,
    what: str = "validation",
) -> Split:
    """The newest `test_fraction` of the rows tests; earlier rows train (purged)."""
    rows = len(start_ms)
    test_rows = math.ceil(rows * test_fraction)
    first_test = rows - test_rows
    if test_rows < MIN_ROWS or first_test <= 0:
        raise SplitError(f"{what} window has {test_rows} rows; it needs at least {MIN_ROWS}")
    train = trainable_before(
        start_ms,
        label_end_ms,
        int(start_ms[first_test]),
        purge_ms=purge_ms,
        embargo_ms=embargo_ms,
        stop=first_test,
    )
    if len(train) < MIN_ROWS:
        raise SplitError(
            f"only {len(train)} rows train before the {what} window after the purge and "
            f"embargo gap; at least {MIN_ROWS} are needed"
        )
    return Split(train=train, test=np.arange(first_test, rows, dtype=np.int64))


def walk_forward_splits(
    start_ms: IntArray,
    label_end_ms: IntArray,
    folds: int,
    *,
    purge_ms: int,
    embargo_ms: int,
) -> list[Split]:
    """Rolling-origin folds: `folds + 1` equal blocks; fold i tests on block i (1..folds)
    and trains on the purged rows of blocks 0..i-1. Test windows are disjoint and ordered."""
    rows = len(start_ms)
    bounds = [round(rows * block / (folds + 1)) for block in range(folds + 2)]
    splits = []
    for fold in range(1, folds + 1):
        first, stop = bounds[fold], bounds[fold + 1]
        train = trainable_before(
            start_ms,
            label_end_ms,
            int(start_ms[first]) if first < rows else 0,
            purge_ms=purge_ms,
            embargo_ms=embargo_ms,
            stop=first,
        )
        if stop - first < MIN_ROWS or len(train) < MIN_ROWS:
            raise SplitError(
                f"walk-forward fold {fold} of {folds} has {len(train)} training and "
                f"{stop - first} test rows after the purge and embargo gap; each needs at "
                f"least {MIN_ROWS}: use fewer folds or more data"
            )
        splits.append(Split(train=train, test=np.arange(first, stop, dtype=np.int64)))
    return splits
