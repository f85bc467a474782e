"""Triple-barrier labels for a year of 1-minute candles.

Reference: the state machine itself (`PositionBook`) opening one market position per row and
stepping it candle by candle, which is what the vectorised labels are proven equal to;
measured on a slice and reported per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import Measurement, best_of, report
from tradepipe.candles import frame_to_candles
from tradepipe.enums import OrderType
from tradepipe.labels import triple_barrier_labels
from tradepipe.orders import EntryRequest, PositionBook

YEAR_OF_MINUTES = 525_600
REFERENCE_ROWS = 5_000
TAKE_PROFIT_PCT = 0.4
STOP_LOSS_PCT = 0.4
MAX_HOLDING_SECONDS = 3_600


def _labels(candles: pd.DataFrame, trailing_stop_pct: float | None = None) -> pd.DataFrame:
    return triple_barrier_labels(
        candles, "1m", take_profit_pct=TAKE_PROFIT_PCT, stop_loss_pct=STOP_LOSS_PCT,
        max_holding_seconds=MAX_HOLDING_SECONDS, trailing_stop_pct=trailing_stop_pct,
    )  # fmt: skip


def _candles(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, rows)))
    opens = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 4e-4, rows)) * close
    return pd.DataFrame(
        {
            "start_ms": 1_704_067_200_000 + 60_000 * np.arange(rows, dtype=np.int64),
            "open": opens,
            "high": np.maximum(opens, close) + spread,
            "low": np.minimum(opens, close) - spread,
            "close": close,
            "volume": np.ones(rows),
            "taker_buy_volume": np.full(rows, 0.5),
            "trade_count": np.ones(rows),
        }
    )


def _state_machine_labels(candles: pd.DataFrame) -> None:
    bars = frame_to_candles(candles, "BTCUSDT", "1m")
    horizon = MAX_HOLDING_SECONDS // 60 + 1
    for index in range(len(bars) - horizon - 1):
        book = PositionBook("bench", "BTCUSDT")
        request = EntryRequest(
            order_type=OrderType.MARKET, capital=100.0,
            take_profit_pct=TAKE_PROFIT_PCT, stop_loss_pct=STOP_LOSS_PCT,
            max_holding_ms=MAX_HOLDING_SECONDS * 1000,
        )  # fmt: skip
        book.submit_entry(request, bars[index].end_ms)
        for bar in bars[index + 1 : index + 1 + horizon]:
            book.on_candle(bar)
            if not book.positions:
                break


def run() -> None:
    year = _candles(YEAR_OF_MINUTES)
    labels = Measurement(
        "triple_barrier_labels (1 year of 1m)",
        best_of(2, lambda: _labels(year)),
        YEAR_OF_MINUTES,
        "rows",
    )
    reference_seconds = best_of(1, lambda: _state_machine_labels(year.iloc[:REFERENCE_ROWS]))
    reference = Measurement(
        "PositionBook row by row (5k-row slice)", reference_seconds, REFERENCE_ROWS, "rows"
    )
    per_row = Measurement(labels.name, labels.seconds / YEAR_OF_MINUTES * REFERENCE_ROWS,
                          REFERENCE_ROWS, "rows")  # fmt: skip
    print(f"  labels for {YEAR_OF_MINUTES:,} candles, 60-minute horizon: {labels.seconds:.2f} s")
    report("labels per row, vectorised vs the state machine itself", per_row, reference)
    trailing = Measurement(
        "with a 0.3 % trailing stop",
        best_of(2, lambda: _labels(year, trailing_stop_pct=0.3)),
        YEAR_OF_MINUTES,
        "rows",
    )
    report("labels with a trailing stop vs without", trailing, labels)
