"""Candle frames for the feature tests: the real shared files and a synthetic market."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.candles import CANDLE_COLUMNS, CANDLE_DTYPES

BTC_HOURLY = "coinbase_btcusd_1h_2017-2019.csv.gz"
GAPPY_MINUTES = "altbtc_1m_2017-11_gappy.csv.gz"

MakeCandles = Callable[..., pd.DataFrame]


def read_ohlcv_csv(path: Path) -> pd.DataFrame:
    """`timestamp,open,high,low,close,volume` (ISO-8601 UTC) -> the kernel's candle layout."""
    raw = pd.read_csv(path)
    stamps = pd.to_datetime(raw.pop("timestamp"), utc=True)
    # Integer division by a Timedelta is exact whatever unit pandas 3 parsed the stamps in.
    raw.insert(0, "start_ms", (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms"))
    raw["taker_buy_volume"] = np.nan
    raw["trade_count"] = np.nan
    return raw.loc[:, list(CANDLE_COLUMNS)].astype(CANDLE_DTYPES)


@pytest.fixture(scope="session")
def btc_hourly(shared_data: Path) -> pd.DataFrame:
    return read_ohlcv_csv(shared_data / BTC_HOURLY)


@pytest.fixture(scope="session")
def gappy_minutes(shared_data: Path) -> pd.DataFrame:
    return read_ohlcv_csv(shared_data / GAPPY_MINUTES)


def random_walk(
    seed: int,
    rows: int,
    *,
    price: float = 30_000.0,
    flat_share: float = 0.1,
    missing_taker_share: float = 0.0,
    taker: bool = True,
) -> pd.DataFrame:
    """A random-walk market with taker volume, tick-rounded prices, gaps and flat candles."""
    rng = np.random.default_rng(seed)
    flat = rng.random(rows) < flat_share
    steps = np.where(flat, 0.0, rng.normal(0.0, 0.01, rows))
    tick = price * 1e-5
    close = np.maximum(np.round(price * np.exp(np.cumsum(steps)) / tick) * tick, tick)
    open_ = np.concatenate([[close[0]], close[:-1]])
    open_ = np.where(flat, close, open_)
    wick = np.abs(rng.normal(0.0, 0.003, (2, rows)))
    high = np.where(flat, close, np.maximum(open_, close) * (1.0 + wick[0]))
    low = np.where(flat, close, np.minimum(open_, close) * (1.0 - wick[1]))
    volume = np.round(rng.exponential(10.0, rows), 4)
    taker_buy = np.round(volume * rng.random(rows), 6)
    if not taker:
        taker_buy[:] = np.nan
    taker_buy[rng.random(rows) < missing_taker_share] = np.nan
    gaps = rng.geometric(0.8, rows)  # minutes apart: mostly 1, some gaps
    start = 1_600_000_000_000 + 60_000 * np.cumsum(gaps)
    frame = pd.DataFrame(
        {
            "start_ms": start,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "taker_buy_volume": taker_buy,
            "trade_count": np.nan,
        }
    )
    return frame.astype(CANDLE_DTYPES)


@pytest.fixture(scope="session")
def make_candles() -> MakeCandles:
    """`random_walk` as a fixture, so test modules need not import this conftest."""
    return random_walk
