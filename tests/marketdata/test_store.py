"""The parquet candle store: round trips, idempotent upserts that touch no file, atomic
month files, series listing, and validation that refuses bad candles before any write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.candles import CANDLE_COLUMNS, CANDLE_DTYPES
from tradepipe.marketdata import CandleValidationError, MarketDataStore, SeriesKeyError

JAN_1 = 1_704_067_200_000
DEC_31 = JAN_1 - 86_400_000


def mtimes(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


def test_round_trip_keeps_values_and_types(
    store: MarketDataStore, two_days_1m: pd.DataFrame
) -> None:
    result = store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m)
    assert (result.rows_added, result.rows_changed, result.rows_total) == (
        len(two_days_1m),
        0,
        len(two_days_1m),
    )
    back = store.read_candles("synthetic", "BTCUSDT", "1m")
    assert back.dtypes.astype(str).to_dict() == CANDLE_DTYPES
    pd.testing.assert_frame_equal(back, two_days_1m)
    file = store.root / "exchange=synthetic/symbol=BTCUSDT/timeframe=1m/month=2024-01.parquet"
    assert file.is_file()


def test_rewriting_the_same_rows_changes_nothing_and_touches_no_file(
    store: MarketDataStore, two_days_1m: pd.DataFrame
) -> None:
    store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m)
    before = mtimes(store.root)
    result = store.write_candles("synthetic", "BTC/USDT", "1m", two_days_1m.iloc[100:900])
    assert (result.rows_added, result.rows_changed, result.rows_total) == (0, 0, len(two_days_1m))
    assert mtimes(store.root) == before


def test_changed_rows_replace_old_ones_and_new_rows_are_added(
    store: MarketDataStore, two_days_1m: pd.DataFrame
) -> None:
    store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m.iloc[:1000])
    update = two_days_1m.iloc[990:1010].copy()
    update.loc[update.index[:2], "volume"] += 1.0
    result = store.write_candles("synthetic", "BTCUSDT", "1m", update)
    assert (result.rows_added, result.rows_changed, result.rows_total) == (10, 2, 1010)
    back = store.read_candles("synthetic", "BTCUSDT", "1m")
    assert back["start_ms"].is_unique and back["start_ms"].is_monotonic_increasing
    volumes = back["volume"].to_numpy()
    assert volumes[990] == two_days_1m["volume"].to_numpy()[990] + 1.0


def test_unknown_values_compare_equal(store: MarketDataStore) -> None:
    plain = pd.DataFrame(
        {"start_ms": [JAN_1], "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5],
         "volume": [3.0]}
    )  # fmt: skip
    store.write_candles("csv", "ABCUSD", "1h", plain)
    back = store.read_candles("csv", "ABCUSD", "1h")
    assert back[["taker_buy_volume", "trade_count"]].isna().all().all()
    result = store.write_candles("csv", "ABCUSD", "1h", plain)
    assert (result.rows_added, result.rows_changed) == (0, 0)


def test_months_are_separate_files_and_reads_filter_by_range(
    store: MarketDataStore, two_days_1m: pd.DataFrame
) -> None:
    december = two_days_1m.iloc[:30].assign(start_ms=lambda f: f["start_ms"] - 86_400_000)
    both = pd.concat([december, two_days_1m.iloc[:30]], ignore_index=True)
    store.write_candles("synthetic", "BTCUSDT", "1m", both)
    series = store.root / "exchange=synthetic/symbol=BTCUSDT/timeframe=1m"
    assert sorted(path.name for path in series.glob("*.parquet")) == [
        "month=2023-12.parquet",
        "month=2024-01.parquet",
    ]
    window = store.read_candles(
        "synthetic", "BTCUSDT", "1m", DEC_31 + 60_000 * 10, JAN_1 + 60_000 * 5
    )
    assert window["start_ms"].iloc[0] == DEC_31 + 60_000 * 10
    assert window["start_ms"].iloc[-1] == JAN_1 + 60_000 * 4
    assert len(window) == 20 + 5
    assert store.read_candles("synthetic", "BTCUSDT", "1m", JAN_1 + 86_400_000).empty
    assert list(store.read_candles("nowhere", "BTCUSDT", "1m").columns) == list(CANDLE_COLUMNS)


def test_list_series_counts_missing_intervals(store: MarketDataStore) -> None:
    gappy = pd.DataFrame(
        {"start_ms": [JAN_1, JAN_1 + 60_000, JAN_1 + 5 * 60_000], "open": 1.0, "high": 1.0,
         "low": 1.0, "close": 1.0, "volume": 1.0}
    )  # fmt: skip
    store.write_candles("binance", "ETHBTC", "1m", gappy)
    store.write_candles("binance", "ETHBTC", "1h", gappy.iloc[:1])
    listed = {(item.symbol, item.timeframe): item for item in store.list_series()}
    minute = listed[("ETHBTC", "1m")]
    assert (minute.exchange, minute.rows, minute.missing_intervals) == ("binance", 3, 3)
    assert (minute.first_start_ms, minute.last_start_ms) == (JAN_1, JAN_1 + 5 * 60_000)
    assert listed[("ETHBTC", "1h")].missing_intervals == 0
    assert store.last_start_ms("binance", "ETHBTC", "1m") == JAN_1 + 5 * 60_000
    assert store.last_start_ms("binance", "NOPE", "1m") is None


def test_no_temporary_files_are_left_behind(
    store: MarketDataStore, two_days_1m: pd.DataFrame
) -> None:
    store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m)
    changed = two_days_1m.assign(volume=two_days_1m["volume"] * 2)  # still >= taker volume
    store.write_candles("synthetic", "BTCUSDT", "1m", changed)
    names = {path.name for path in store.root.rglob("*") if path.is_file()}
    assert names == {"month=2024-01.parquet", ".lock"}


def test_empty_frame_writes_nothing(store: MarketDataStore, two_days_1m: pd.DataFrame) -> None:
    result = store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m.iloc[:0])
    assert (result.rows_added, result.rows_total) == (0, 0)
    assert store.list_series() == []


def corrupt(frame: pd.DataFrame, row: int, **values: float) -> pd.DataFrame:
    bad = frame.copy()
    for column, value in values.items():
        bad.loc[row, column] = value
    return bad


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"high": 1.0}, "high is below"),
        ({"low": 1e9}, "low is above"),
        ({"volume": -1.0}, "volume"),
        ({"open": float("nan")}, "finite and positive"),
        ({"close": 0.0, "low": 0.0}, "finite and positive"),
        ({"taker_buy_volume": 1e9}, "taker_buy_volume"),
        ({"trade_count": 1.5}, "trade_count"),
        ({"start_ms": JAN_1 + 1}, "not aligned to 1m"),
        ({"start_ms": JAN_1 + 60_000}, "duplicated"),
    ],
)
def test_bad_candles_raise_and_nothing_is_written(
    store: MarketDataStore, two_days_1m: pd.DataFrame, change: dict[str, float], message: str
) -> None:
    store.write_candles("synthetic", "BTCUSDT", "1m", two_days_1m.iloc[:5])
    before = mtimes(store.root)
    december = two_days_1m.iloc[:3].assign(start_ms=lambda f: f["start_ms"] - 86_400_000)
    bad = corrupt(pd.concat([december, two_days_1m], ignore_index=True), 5, **change)
    with pytest.raises(CandleValidationError, match=message) as raised:
        store.write_candles("synthetic", "BTCUSDT", "1m", bad)
    assert "synthetic BTCUSDT 1m" in str(raised.value) and "nothing written" in str(raised.value)
    assert mtimes(store.root) == before  # the valid December rows were not written either


def test_wrong_columns_are_named(store: MarketDataStore) -> None:
    frame = pd.DataFrame({"time": [JAN_1], "price": [1.0]})
    with pytest.raises(CandleValidationError, match=r"\['time', 'price'\]"):
        store.write_candles("binance", "BTCUSDT", "1m", frame)


def test_non_numeric_and_fractional_times_are_refused(store: MarketDataStore) -> None:
    base = {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]}
    with pytest.raises(CandleValidationError, match="whole"):
        store.write_candles("binance", "BTCUSDT", "1m", pd.DataFrame({"start_ms": [0.5], **base}))
    with pytest.raises(CandleValidationError, match="non-numeric"):
        bad = pd.DataFrame({"start_ms": [JAN_1], **base, "volume": ["lots"]})
        store.write_candles("binance", "BTCUSDT", "1m", bad)


@pytest.mark.parametrize(
    ("exchange", "symbol"),
    [
        ("bin/ance", "BTCUSDT"),
        ("binance", "BTC USDT"),
        ("", "X"),
        ("binance", "../x"),
        ("-live", "BTCUSDT"),
    ],
)
def test_names_that_cannot_be_paths_are_refused(
    store: MarketDataStore, exchange: str, symbol: str
) -> None:
    with pytest.raises(SeriesKeyError):
        store.read_candles(exchange, symbol, "1m")


def test_a_derived_exchange_id_is_a_series_of_its_own(store: MarketDataStore) -> None:
    # the live engine records what it built as binance-live, beside the exchange's binance
    frame = pd.DataFrame(
        {"start_ms": [JAN_1], "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5],
         "volume": [3.0]}
    )  # fmt: skip
    store.write_candles("binance-live", "BTCUSDT", "1m", frame)
    assert store.series_dir("binance-live", "BTCUSDT", "1m").parts[-3] == "exchange=binance-live"
    assert store.row_count("binance-live", "BTCUSDT", "1m") == 1
    assert store.row_count("binance", "BTCUSDT", "1m") == 0
    assert [(s.exchange, s.rows) for s in store.list_series()] == [("binance-live", 1)]


def test_symbols_are_one_key_however_typed(store: MarketDataStore) -> None:
    assert store.series_dir("Binance", "btc/usdt", "60s") == store.series_dir(
        "binance", "BTC-USDT", "1m"
    )
    assert np.array_equal(
        store.series_dir("binance", "BTCUSDT", "1m").parts[-3:],
        ("exchange=binance", "symbol=BTCUSDT", "timeframe=1m"),
    )
