"""No look-ahead: a row's features never change when later candles arrive or differ."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.candles import frame_to_candles
from tradepipe.features import FeatureSpec, IncrementalFeatures, compute_features, default_spec

MakeCandles = Callable[..., pd.DataFrame]

SPECS = [
    default_spec(),
    FeatureSpec(
        name="odd",
        return_horizons=(2, 7),
        sma_windows=(3, 70),
        ema_spans=(1, 5),
        volatility_windows=(2, 9),
        rsi_periods=(3,),
        momentum_periods=(1, 4),
        volume_windows=(3, 11),
        taker_flow_windows=(1, 6),
    ),
]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(2, 400),
    cut=st.floats(0.0, 1.0),
    spec=st.sampled_from(SPECS),
    flat_share=st.sampled_from([0.0, 0.3, 0.9]),
)
def test_batch_on_a_prefix_equals_the_whole_restricted_to_it(
    make_candles: MakeCandles,
    seed: int,
    rows: int,
    cut: float,
    spec: FeatureSpec,
    flat_share: float,
) -> None:
    candles = make_candles(seed, rows, flat_share=flat_share, missing_taker_share=0.05)
    prefix_rows = max(1, int(cut * rows))
    whole = compute_features(candles, spec)
    prefix = compute_features(candles.iloc[:prefix_rows], spec)
    # exact: a value that moves by a single bit when the future changes is look-ahead
    pd.testing.assert_frame_equal(prefix, whole.iloc[:prefix_rows], check_exact=True)

    # A different future, not just a longer one, leaves the past alone too.
    future = make_candles(seed + 1, rows - prefix_rows + 1, flat_share=flat_share)
    future = future.iloc[1:].assign(start_ms=lambda f: f["start_ms"] + 10**13)
    other = pd.concat([candles.iloc[:prefix_rows], future], ignore_index=True)
    pd.testing.assert_frame_equal(
        compute_features(other, spec).iloc[:prefix_rows], prefix, check_exact=True
    )

    # Incremental values are final when returned; they equal batch on the whole history.
    incremental = IncrementalFeatures(spec)
    values = np.array(
        [incremental.update(c) for c in frame_to_candles(candles.iloc[:prefix_rows], "X", "1m")]
    )
    np.testing.assert_array_equal(values, whole.iloc[:prefix_rows].to_numpy())
