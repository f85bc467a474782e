"""Feature cost per candle: the live incremental update against batch as the reference.

The live engine updates one state per (symbol, timeframe, spec) on every closed candle, so
the incremental update is the figure that matters (target: 5 µs per candle for the default
spec on Python 3.11). Batch, vectorised over the same history, is the reference measured in
the same run; the ratio says what computing one candle at a time costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmarks.harness import Measurement, best_of, print_target, report
from tradepipe.candles import CANDLE_DTYPES, frame_to_candles
from tradepipe.domain import Candle
from tradepipe.features import FeatureSpec, IncrementalFeatures, compute_features, default_spec

CANDLES = 50_000
TARGET_US = 5.0


def _candles() -> pd.DataFrame:
    """A minute random walk around 60k with taker volume and some flat candles."""
    rng = np.random.default_rng(3)
    steps = np.where(rng.random(CANDLES) < 0.1, 0.0, rng.normal(0.0, 0.001, CANDLES))
    close = np.round(60_000 * np.exp(np.cumsum(steps)), 2)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wicks = np.abs(rng.normal(0.0, 0.0005, (2, CANDLES)))
    volume = np.round(rng.exponential(5.0, CANDLES), 5)
    frame = pd.DataFrame(
        {
            "start_ms": 1_723_161_240_000 + 60_000 * np.arange(CANDLES),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wicks[0]),
            "low": np.minimum(open_, close) * (1 - wicks[1]),
            "close": close,
            "volume": volume,
            "taker_buy_volume": np.round(volume * rng.random(CANDLES), 5),
            "trade_count": np.nan,
        }
    )
    return frame.astype(CANDLE_DTYPES)


def _stream(candles: list[Candle], spec: FeatureSpec) -> None:
    update = IncrementalFeatures(spec).update
    for candle in candles:
        update(candle)


def _cpu_seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def run() -> None:
    spec = default_spec()
    frame = _candles()
    objects = frame_to_candles(frame, "BTCUSDT", "1m")
    batch = Measurement(
        "compute_features (batch)",
        best_of(3, lambda: compute_features(frame, spec)),
        CANDLES,
        "candles",
    )
    incremental = Measurement(
        "IncrementalFeatures.update (live)",
        best_of(3, lambda: _stream(objects, spec)),
        CANDLES,
        "candles",
    )
    report(
        f"{len(spec.feature_names)} default features over {CANDLES:,} candles", incremental, batch
    )
    per_candle = incremental.seconds / CANDLES * 1e6
    print_target("incremental per candle", per_candle, TARGET_US, "µs")
    # CPU time: what a machine shared with other work inflates far less than the wall clock.
    cpu = min(_cpu_seconds(lambda: _stream(objects, spec)) for _ in range(3))
    print(f"  incremental CPU time: {cpu / CANDLES * 1e6:.2f} µs per candle")
    print(f"  batch:       {batch.seconds / CANDLES * 1e6:.2f} µs per row")
