"""Walk-forward and holdout splits: no training row's label reaches into its test window,
and the purge and embargo gaps hold, for any gappy series (property tests on indices)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.training.splits import (
    MIN_ROWS,
    SplitError,
    holdout_split,
    walk_forward_splits,
)

MINUTE = 60_000


@st.composite
def labelled_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Decision times on a 1-minute grid with gaps; each label ends 2..90 minutes later
    (a take-profit after one candle, or a timeout stretched by a gap)."""
    rows = draw(st.integers(min_value=2 * MIN_ROWS, max_value=1_500))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 1, 2, 5, 30], size=rows)
    start = (np.cumsum(steps) * MINUTE).astype(np.int64)
    label_end = start + rng.integers(2, 91, size=rows).astype(np.int64) * MINUTE
    return start, label_end


def check_no_leak(start: np.ndarray, label_end: np.ndarray, train: np.ndarray, test: np.ndarray,
                  purge_ms: int, embargo_ms: int) -> None:  # fmt: skip
    boundary = start[test[0]]
    assert len(np.intersect1d(train, test)) == 0
    assert np.all(np.diff(test) == 1), "a test window is one contiguous block"
    assert np.all(train < test[0]), "training rows come before the test window"
    assert np.all(label_end[train] + embargo_ms <= boundary), "a label reaches the test window"
    assert np.all(start[train] + purge_ms + embargo_ms <= boundary), "purge gap violated"


@settings(max_examples=150, deadline=None)
@given(
    rows=labelled_rows(),
    folds=st.integers(min_value=1, max_value=5),
    purge_minutes=st.integers(min_value=0, max_value=120),
    embargo_minutes=st.integers(min_value=0, max_value=120),
)
def test_walk_forward_folds_respect_purge_and_embargo(
    rows: tuple[np.ndarray, np.ndarray], folds: int, purge_minutes: int, embargo_minutes: int
) -> None:
    start, label_end = rows
    purge_ms, embargo_ms = purge_minutes * MINUTE, embargo_minutes * MINUTE
    try:
        splits = walk_forward_splits(
            start, label_end, folds, purge_ms=purge_ms, embargo_ms=embargo_ms
        )
    except SplitError as error:
        assert "walk-forward fold" in str(error)
        return
    assert len(splits) == folds
    for split in splits:
        check_no_leak(start, label_end, split.train, split.test, purge_ms, embargo_ms)
        assert len(split.train) >= MIN_ROWS and len(split.test) >= MIN_ROWS
    # Rolling origin: test windows tile the rows after the first block, in order.
    tested = np.concatenate([split.test for split in splits])
    assert np.array_equal(tested, np.arange(splits[0].test_start, len(start)))
    # Every row that may train (before the window, far enough from it) does train.
    for split in splits:
        cutoff = start[split.test_start] - embargo_ms
        allowed = np.flatnonzero(
            (np.arange(len(start)) < split.test_start)
            & (label_end <= cutoff)
            & (start + purge_ms <= cutoff)
        )
        assert np.array_equal(split.train, allowed)


@settings(max_examples=100, deadline=None)
@given(
    rows=labelled_rows(),
    fraction=st.floats(min_value=0.05, max_value=0.5),
    gap_minutes=st.integers(min_value=0, max_value=120),
)
def test_the_validation_window_is_the_newest_rows_and_is_purged(
    rows: tuple[np.ndarray, np.ndarray], fraction: float, gap_minutes: int
) -> None:
    start, label_end = rows
    gap = gap_minutes * MINUTE
    try:
        split = holdout_split(start, label_end, fraction, purge_ms=gap, embargo_ms=gap)
    except SplitError:
        return
    assert split.test_stop == len(start)
    assert len(split.test) == int(np.ceil(len(start) * fraction))
    check_no_leak(start, label_end, split.train, split.test, gap, gap)


def test_too_few_rows_for_the_folds_is_one_clear_error() -> None:
    start = np.arange(300, dtype=np.int64) * MINUTE
    with pytest.raises(SplitError, match="use fewer folds or more data"):
        walk_forward_splits(start, start + 2 * MINUTE, 10, purge_ms=0, embargo_ms=0)
