"""Candles, strategies and configs for the backtest tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.marketdata.sources.csv_files import read_candle_file
from research.marketdata.sources.synthetic import synthetic_candles
from tradepipe.strategy import LoadedStrategy, load_strategy

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
START_MS = 1_704_067_200_000  # 2024-01-01
DAY_MS = 86_400_000


@pytest.fixture(scope="session")
def ema_rsi() -> LoadedStrategy:
    return load_strategy(STRATEGIES / "ema_rsi.py")


@pytest.fixture(scope="session")
def lgbm_threshold() -> LoadedStrategy:
    return load_strategy(STRATEGIES / "lgbm_threshold.py")


@pytest.fixture(scope="session")
def synthetic_minutes() -> pd.DataFrame:
    """Four days of the synthetic market in 1-minute candles."""
    return synthetic_candles("BTCUSDT", "1m", START_MS, START_MS + 4 * DAY_MS)


@pytest.fixture(scope="session")
def btc_hourly(shared_data: Path) -> pd.DataFrame:
    return read_candle_file(shared_data / "coinbase_btcusd_1h_2017-2019.csv.gz", "1h")


@pytest.fixture(scope="session")
def gappy_minutes(shared_data: Path) -> pd.DataFrame:
    return read_candle_file(shared_data / "altbtc_1m_2017-11_gappy.csv.gz", "1m")
