"""Research's data references: a store key or a file, with a stable fingerprint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.marketdata import IngestRequest, ingest
from research.marketdata.errors import SourceError
from research.marketdata.load import load_candles
from tradepipe.marketdata import MarketDataStore

DAY_MS = 86_400_000
START = 1_704_067_200_000  # 2024-01-01


@pytest.fixture
def store(tmp_path: Path) -> MarketDataStore:
    store = MarketDataStore(tmp_path / "md")
    ingest(
        store, IngestRequest("synthetic", None, "BTCUSDT", "1h", None, START, START + 3 * DAY_MS)
    )
    return store


def test_store_key_loads_the_series_with_a_stable_fingerprint(store: MarketDataStore) -> None:
    data = load_candles("synthetic/BTCUSDT/1h", store=store)
    assert data.rows == 72 and data.timeframe.name == "1h" and data.symbol == "BTCUSDT"
    again = load_candles("synthetic/BTCUSDT/1h", store=store)
    assert data.fingerprint() == again.fingerprint()
    assert data.fingerprint()["end_ms"] == START + 3 * DAY_MS
    first_day = load_candles("synthetic/BTCUSDT/1h", store=store, end_ms=START + DAY_MS)
    assert first_day.rows == 24 and first_day.content_hash != data.content_hash


@pytest.mark.shared_data
def test_candle_file_uses_its_own_interval_unless_told(shared_data: Path, tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path)
    hourly = load_candles(str(shared_data / "coinbase_btcusd_1h_2017-2019.csv.gz"), store=store)
    assert hourly.timeframe.name == "1h" and hourly.rows > 20_000
    daily = load_candles(
        str(shared_data / "coinbase_btcusd_1h_2017-2019.csv.gz"), store=store, timeframe="1d"
    )
    assert daily.timeframe.name == "1d" and daily.rows < hourly.rows / 20
    trades = shared_data / "binance_xrpeth_trades_2019-10-11.csv.gz"
    with pytest.raises(SourceError, match="needs the candle timeframe"):
        load_candles(str(trades), store=store)
    assert load_candles(str(trades), store=store, timeframe="1m").rows == 2469


def test_bad_references_are_clear(store: MarketDataStore, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_candles("missing.csv", store=store)
    with pytest.raises(SourceError, match="no such stored series"):
        load_candles("synthetic/ETHUSDT/1h", store=store)
    with pytest.raises(SourceError, match="neither a file nor a store key"):
        load_candles("just-a-name", store=store)
    with pytest.raises(SourceError, match="stored series is 1h, not 1m"):
        load_candles("synthetic/BTCUSDT/1h", store=store, timeframe="1m")


def test_missing_values_are_refused_with_the_candle_time(tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    frame = pd.DataFrame(
        {
            "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"],
            "open": [1.0, 1.0, 1.0],
            "high": [1.0, None, 1.0],
            "low": [1.0, 1.0, 1.0],
            "close": [1.0, 1.0, 1.0],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError) as raised:
        load_candles(str(path), store=MarketDataStore(tmp_path))
    assert "holes.csv" in str(raised.value)
