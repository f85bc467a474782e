"""Training cost for a year of 1-minute candles: dataset building and the LightGBM fit.

The demo spec's recipe (research/specs/btcusdt_1m.toml: default features, 0.3 % / 0.3 % /
1 h barriers, its LightGBM parameters) on one year of synthetic BTCUSDT candles. Building
the dataset (batch features + triple-barrier labels + dropping warm-up and unlabelled rows)
is the reference measured in the same run; the ratio says how many dataset builds one fit
costs. The fit runs a fixed number of rounds, without early stopping, so the figure does
not depend on when the validation loss happens to turn.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from benchmarks.harness import Measurement, best_of, report
from research.marketdata.sources.synthetic import synthetic_candles
from research.training.dataset import Dataset, build_dataset
from research.training.spec import ModelSpec, load_spec
from tradepipe.features import compute_features
from tradepipe.labels import triple_barrier_labels

SPEC = Path(__file__).resolve().parents[1] / "research" / "specs" / "btcusdt_1m.toml"
START, END = "2023-01-01", "2024-01-01"
ROUNDS = 100


def _ms(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp() * 1000)


def _fit(dataset: Dataset, spec: ModelSpec, threads: int) -> lgb.Booster:
    everything = np.arange(len(dataset), dtype=np.int64)
    train_set = lgb.Dataset(dataset.matrix(everything), label=dataset.targets(everything))
    params = spec.lightgbm.booster_params() | {"num_threads": threads}
    return lgb.train(params, train_set, num_boost_round=ROUNDS)


def run() -> None:
    spec = load_spec(SPEC)
    started = time.perf_counter()
    candles = synthetic_candles(spec.symbol, spec.timeframe, _ms(START), _ms(END))
    generated = time.perf_counter() - started
    rows = len(candles)
    print(f"  synthetic market: {rows:,} candles of {START}..{END} in {generated:.1f} s (setup)")

    features = Measurement(
        "compute_features (batch)",
        best_of(2, lambda: compute_features(candles, spec.features)),
        rows,
        "candles",
    )
    labels = Measurement(
        "triple_barrier_labels",
        best_of(
            2,
            lambda: triple_barrier_labels(
                candles,
                spec.timeframe,
                take_profit_pct=spec.labels.take_profit_pct,
                stop_loss_pct=spec.labels.stop_loss_pct,
                max_holding_seconds=spec.labels.max_holding_seconds,
            ),
        ),
        rows,
        "candles",
    )
    dataset = build_dataset(candles, spec, source="synthetic year")
    building = Measurement(
        "build_dataset (features + labels)",
        best_of(2, lambda: build_dataset(candles, spec, source="synthetic year")),
        rows,
        "candles",
    )
    threads = spec.lightgbm.num_threads
    fit = Measurement(
        f"LightGBM fit, {ROUNDS} rounds, {threads} thread(s)",
        best_of(1, lambda: _fit(dataset, spec, threads)),
        len(dataset),
        "rows",
    )
    title = (
        f"training on {len(dataset):,} rows x {len(spec.features.feature_names)} features "
        f"({spec.lightgbm.num_leaves} leaves)"
    )
    report(title, fit, building)
    both_cores = best_of(1, lambda: _fit(dataset, spec, 2))
    print(f"  the same fit on 2 threads: {both_cores:.2f} s (spin-waits when cores are busy)")
    print(f"  of which features: {features.seconds:.2f} s, labels: {labels.seconds:.2f} s")
    total = building.seconds + fit.seconds
    print(f"  features + labels + fit: {total:.1f} s for a year of 1-minute candles")
