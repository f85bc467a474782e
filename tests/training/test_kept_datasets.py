"""Kept datasets: built once per (candles, spec), loaded back bit for bit by later steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from research.marketdata.load import CandleData
from research.training import build_dataset, load_spec
from research.training.dataset import Dataset
from research.training.kept_datasets import KEEP, dataset_key, kept_dataset
from tests.training.helpers import SpecWriter


def _assert_same(left: Dataset, right: Dataset) -> None:
    pd.testing.assert_frame_equal(left.features, right.features, check_exact=True)
    pd.testing.assert_frame_equal(left.candles, right.candles, check_exact=True)
    for name in ("rows", "labels", "start_ms", "label_end_ms"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name
        assert getattr(left, name).dtype == getattr(right, name).dtype, name
    assert (left.timeframe, left.source) == (right.timeframe, right.source)


def test_the_second_step_loads_what_the_first_built(
    candles: CandleData, write_spec: SpecWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_spec())
    folder = tmp_path / "datasets"
    first = kept_dataset(folder, candles, spec)
    (kept,) = folder.glob("dataset-*.npz")
    assert kept.name == f"dataset-{dataset_key(candles, spec)}.npz"
    second = kept_dataset(folder, candles, spec)
    assert second.features is not first.features  # loaded, not a cached object
    _assert_same(first, build_dataset(candles.candles, spec, source=candles.source))
    _assert_same(second, first)


def test_other_candles_or_another_spec_are_another_dataset(
    candles: CandleData, write_spec: SpecWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_spec())
    other_spec = load_spec(write_spec("other.toml", **{"labels.take_profit_pct": 0.6}))
    fewer = replace(candles, candles=candles.candles.iloc[:-500])
    keys = {dataset_key(candles, spec), dataset_key(candles, other_spec)}
    keys.add(dataset_key(fewer, spec))
    assert len(keys) == 3
    folder = tmp_path / "datasets"
    kept_dataset(folder, candles, spec)
    loaded = kept_dataset(folder, fewer, spec)
    assert len(loaded.candles) == len(candles.candles) - 500
    assert len(list(folder.glob("dataset-*.npz"))) == 2


def test_an_unreadable_file_is_built_again_and_only_the_newest_stay(
    candles: CandleData, write_spec: SpecWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_spec())
    folder = tmp_path / "datasets"
    folder.mkdir()
    path = folder / f"dataset-{dataset_key(candles, spec)}.npz"
    path.write_bytes(b"half a file")
    _assert_same(
        kept_dataset(folder, candles, spec),
        build_dataset(candles.candles, spec, source=candles.source),
    )
    assert path.stat().st_size > 1000
    for rows in range(1, KEEP + 2):
        kept_dataset(folder, replace(candles, candles=candles.candles.iloc[: -rows * 100]), spec)
    assert len(list(folder.glob("dataset-*.npz"))) == KEEP
    assert not path.exists()  # the oldest went first


def test_without_a_folder_every_step_builds(candles: CandleData, write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec())
    _assert_same(
        kept_dataset(None, candles, spec),
        build_dataset(candles.candles, spec, source=candles.source),
    )
