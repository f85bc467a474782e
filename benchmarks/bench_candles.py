"""Candle aggregation throughput on synthetic trades shaped like the real capture.

Reference: a plain pandas groupby with float `.sum()` (fast, but order-dependent volumes).
We measure what exact volumes cost in batch, and the streaming aggregator against batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import Measurement, best_of, report
from tradepipe.candles import aggregate_trades, candles_from_trades
from tradepipe.domain import Side, Trade

TRADES = 500_000


def _trades() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    gaps = rng.exponential(120.0, TRADES).astype("int64")  # ~8 trades a second, like BTCUSDT
    return pd.DataFrame(
        {
            "time_ms": 1_723_161_255_342 + np.cumsum(gaps),
            "trade_id": np.arange(TRADES),
            "price": np.round(61_800 * np.exp(np.cumsum(rng.normal(0, 2e-5, TRADES))), 2),
            "quantity": np.round(rng.exponential(0.05, TRADES), 5),
            "taker_buy": rng.random(TRADES) < 0.5,
        }
    )


def _plain_groupby(trades: pd.DataFrame) -> pd.DataFrame:
    start = trades["time_ms"] - trades["time_ms"] % 60_000
    return trades.groupby(start).agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("quantity", "sum"),
    )


def run() -> None:
    trades = _trades()
    objects = [
        Trade("BTCUSDT", t, p, q, Side.BUY if b else Side.SELL, i)
        for t, i, p, q, b in trades.itertuples(index=False)
    ]
    reference = Measurement(
        "pandas groupby, float sum", best_of(3, lambda: _plain_groupby(trades)), TRADES, "trades"
    )
    batch = Measurement(
        "aggregate_trades (batch, exact sums)",
        best_of(3, lambda: aggregate_trades(trades, "1m")),
        TRADES,
        "trades",
    )
    streaming = Measurement(
        "CandleAggregator (streaming)",
        best_of(3, lambda: list(candles_from_trades(objects, "1m"))),
        TRADES,
        "trades",
    )
    report("batch 1m candles from 500k trades", batch, reference)
    report("streaming 1m candles from 500k trades", streaming, batch)
