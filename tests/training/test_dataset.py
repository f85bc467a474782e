"""Datasets: features and labels of the usable rows, and one clear error for data that
cannot train a model under the spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research.marketdata.load import CandleData
from research.training import (
    DatasetError,
    Workspace,
    build_dataset,
    load_spec,
    load_training_candles,
    required_rows,
)
from tests.training.helpers import SpecWriter
from tradepipe.candles import CANDLE_DTYPES
from tradepipe.labels import triple_barrier_labels


def test_usable_rows_are_past_warm_up_and_labelled(
    candles: CandleData, write_spec: SpecWriter
) -> None:
    spec = load_spec(write_spec())
    dataset = build_dataset(candles.candles, spec, source=candles.source)
    labels = triple_barrier_labels(
        candles.candles,
        "1m",
        take_profit_pct=spec.labels.take_profit_pct,
        stop_loss_pct=spec.labels.stop_loss_pct,
        max_holding_seconds=spec.labels.max_holding_seconds,
    )
    assert dataset.rows[0] >= spec.features.warmup
    assert np.all(np.diff(dataset.rows) > 0)
    assert np.array_equal(dataset.labels, labels["label"].to_numpy()[dataset.rows])
    assert set(np.unique(dataset.labels)) == {0, 1}
    assert np.all(dataset.label_end_ms >= dataset.start_ms + 2 * 60_000)
    assert list(dataset.matrix(np.arange(3)).columns) == list(spec.features.feature_names)
    # Only the tail without a full horizon is unlabelled: about one horizon of candles.
    horizon = round(spec.labels.max_holding_seconds / 60)
    assert len(candles.candles) - dataset.rows[-1] <= horizon + 2


def test_data_shorter_than_the_folds_need(candles: CandleData, write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec(**{"walk_forward.folds": 5}))
    short = candles.candles.iloc[: required_rows(spec)]
    with pytest.raises(DatasetError, match=r"short.csv: \d+ usable rows .* need at least \d+"):
        build_dataset(short, spec, source="short.csv")


def test_labels_of_one_class(write_spec: SpecWriter) -> None:
    # A market rising 0.05 % a minute hits every take-profit (0.7 %) within 30 minutes.
    rows = 6_000
    close = 30_000 * 1.0005 ** np.arange(1, rows + 1)
    frame = pd.DataFrame(
        {
            "start_ms": 1_709_251_200_000 + 60_000 * np.arange(rows),
            "open": close / 1.0005,
            "high": close * 1.0001,
            "low": close / 1.0005 * 0.9999,
            "close": close,
            "volume": 1.0,
            "taker_buy_volume": 0.5,
            "trade_count": 10.0,
        }
    ).astype(CANDLE_DTYPES)
    spec = load_spec(write_spec())
    with pytest.raises(DatasetError, match=r"all \d+ labels are 1 \(take-profit\).*\[labels\]"):
        build_dataset(frame, spec, source="rising")


def test_missing_values_and_empty_data(candles: CandleData, write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec())
    broken = candles.candles.copy()
    broken.loc[100, "close"] = np.nan
    with pytest.raises(DatasetError, match="missing or infinite values in the candle at 2024-03"):
        build_dataset(broken, spec, source="gappy")
    with pytest.raises(DatasetError, match="empty: no candles"):
        build_dataset(candles.candles.iloc[:0], spec, source="empty")


def test_training_candles_name_what_to_ingest_and_refuse_another_symbol(
    workspace: Workspace,
) -> None:
    window = {"start_ms": None, "end_ms": None}
    loaded = load_training_candles("synthetic/BTCUSDT/1m", "1m", "btcusdt", workspace, **window)
    assert loaded.symbol == "BTCUSDT" and loaded.rows > 0
    with pytest.raises(DatasetError, match=r"no such stored series.*ingest it first"):
        load_training_candles("synthetic/ETHUSDT/1m", "1m", "ETHUSDT", workspace, **window)
    with pytest.raises(DatasetError, match="holds BTCUSDT candles, the spec trains ETHUSDT"):
        load_training_candles("synthetic/BTCUSDT/1m", "1m", "ETHUSDT", workspace, **window)
