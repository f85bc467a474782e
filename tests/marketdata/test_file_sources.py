"""File sources on the real exchange files of ../shared/data, and their errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.marketdata import SourceError, read_trade_file
from research.marketdata.sources import capture_candles, file_layout, read_candle_file
from tradepipe.candles import CANDLE_DTYPES, TRADE_COLUMNS, aggregate_trades

COINBASE = "coinbase_btcusd_1h_2017-2019.csv.gz"
GAPPY = "altbtc_1m_2017-11_gappy.csv.gz"
XRP_TRADES = "binance_xrpeth_trades_2019-10-11.csv.gz"
XRP_CANDLES = "binance_xrpeth_1m_2019-10-11.csv.gz"
ADA_KLINES = "binance_adabtc_klines_1m_2021-11-27.csv"
CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
HOUR_MS = 3_600_000


@pytest.mark.shared_data
def test_layouts_are_recognised_by_content(shared_data: Path) -> None:
    assert file_layout(shared_data / COINBASE) == "candles"
    assert file_layout(shared_data / XRP_TRADES) == "trades"
    assert file_layout(shared_data / ADA_KLINES) == "klines"


@pytest.mark.shared_data
def test_hourly_iso_candles(shared_data: Path) -> None:
    candles = read_candle_file(shared_data / COINBASE, "1h")
    assert candles.dtypes.astype(str).to_dict() == CANDLE_DTYPES
    # 20,111 rows, of which 28 zero-volume fillers: the gap policy drops them
    assert len(candles) == 20_111 - 28 and (candles["volume"] > 0).all()
    assert candles["start_ms"].iloc[0] == 1_498_906_800_000  # 2017-07-01T11:00:00Z
    assert candles[["taker_buy_volume", "trade_count"]].isna().all().all()


@pytest.mark.shared_data
def test_finer_candles_are_resampled_and_coarser_refused(shared_data: Path) -> None:
    hourly = read_candle_file(shared_data / COINBASE, "1h")
    daily = read_candle_file(shared_data / COINBASE, "1d")
    assert (daily["start_ms"] % 86_400_000 == 0).all()
    assert daily["volume"].sum() == pytest.approx(hourly["volume"].sum(), rel=1e-12)
    assert daily["high"].max() == hourly["high"].max()
    with pytest.raises(SourceError, match=r"holds 1h candles.*1m"):
        read_candle_file(shared_data / COINBASE, "1m")


@pytest.mark.shared_data
def test_gappy_minutes_keep_their_gaps(shared_data: Path) -> None:
    minutes = read_candle_file(shared_data / GAPPY, "1m")
    assert len(minutes) == 13_681
    steps = np.diff(minutes["start_ms"].to_numpy()) // 60_000
    assert (steps > 1).sum() == 538  # gaps, as the data README counts them
    assert (steps - 1).sum() == 717  # minutes without a candle
    five = read_candle_file(shared_data / GAPPY, "5m")
    assert five["volume"].sum() == pytest.approx(minutes["volume"].sum(), rel=1e-12)


@pytest.mark.shared_data
def test_range_is_half_open_on_candle_starts(shared_data: Path) -> None:
    start = 1_509_900_000_000 - 1_509_900_000_000 % HOUR_MS
    window = read_candle_file(shared_data / GAPPY, "1m", start, start + HOUR_MS)
    assert window["start_ms"].min() >= start and window["start_ms"].max() < start + HOUR_MS


@pytest.mark.shared_data
def test_trades_build_the_exchanges_own_minutes(shared_data: Path) -> None:
    built = read_candle_file(shared_data / XRP_TRADES, "1m")
    exchange = read_candle_file(shared_data / XRP_CANDLES, "1m")
    assert len(built) == len(exchange) == 2_469
    columns = ["start_ms", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(built[columns], exchange[columns])
    assert built["trade_count"].sum() == 12_477
    assert (built["taker_buy_volume"] <= built["volume"]).all()


@pytest.mark.shared_data
def test_binance_kline_rows(shared_data: Path) -> None:
    klines = read_candle_file(shared_data / ADA_KLINES, "1m")
    assert len(klines) == 10
    first = klines.iloc[0]
    assert first["start_ms"] == 1_637_971_200_000
    assert (first["open"], first["volume"]) == (0.00002853, 36304.2)
    assert (first["taker_buy_volume"], first["trade_count"]) == (19523.0, 79.0)
    five = read_candle_file(shared_data / ADA_KLINES, "5m")
    assert five["trade_count"].tolist() == [
        klines["trade_count"].iloc[:5].sum(),
        klines["trade_count"].iloc[5:].sum(),
    ]


def test_epoch_ms_timestamps_and_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1704067200000,10,11,9,10.5,2\n"
        "1704067260000,10.5,10.5,10.5,10.5,0\n"
        "1704067320000,10.5,12,10,11,3\n"
    )
    candles = read_candle_file(path, "1m")
    assert candles["start_ms"].tolist() == [1704067200000, 1704067320000]  # filler dropped


def test_microsecond_kline_open_times_become_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "klines.csv.gz"
    row = "1735689600000000,1.0,2.0,0.5,1.5,10.0,1735689659999999,15.0,4,6.0,9.0,0\n"
    with gzip.open(path, "wt") as handle:
        handle.write(row)
    assert read_candle_file(path, "1m")["start_ms"].tolist() == [1_735_689_600_000]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("when,what\n1,2\n", r"unrecognised columns \['when', 'what'\]"),
        ("", "empty"),
        ("timestamp,open,high,low,close,volume\n1704067200,1,1,1,1,1\n", "look like seconds"),
        ("timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "ISO-8601"),
        ("timestamp,open,high,low,close,volume\n1704067200000,1,x,1,1,1\n", "not a candle file"),
        ("timestamp,id,side,price,amount\n1,2,maybe,1,1\n", "buy or sell"),
        ("1,2,3\n", "unrecognised columns"),
        ('1 {"stream": "x"}\n', "use the capture source"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "input.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match=message) as raised:
        read_candle_file(path, "1m")
    assert str(path) in str(raised.value)


def test_missing_file() -> None:
    with pytest.raises(SourceError, match="no such file"):
        read_candle_file(Path("nowhere.csv"), "1m")
    with pytest.raises(SourceError, match="no such file"):
        read_trade_file(Path("nowhere.csv"))


@pytest.mark.shared_data
def test_capture_candles_leave_out_the_partial_edges(shared_data: Path) -> None:
    trades = read_trade_file(shared_data / CAPTURE)
    seconds = aggregate_trades(trades, "1s")
    candles = capture_candles(shared_data / CAPTURE, "BTCUSDT", "1s")
    assert len(seconds) == 345 and len(candles) == 343
    pd.testing.assert_frame_equal(candles, seconds.iloc[1:-1].reset_index(drop=True))
    minutes = capture_candles(shared_data / CAPTURE, "btc/usdt", "1m")
    assert minutes["start_ms"].tolist() == [1723161300000 + i * 60_000 for i in range(5)]


@pytest.mark.shared_data
def test_read_trade_file_detects_captures_and_csv(shared_data: Path) -> None:
    capture = read_trade_file(shared_data / CAPTURE)
    csv = read_trade_file(shared_data / XRP_TRADES, symbol="ignored for csv")
    for frame, rows in ((capture, 9_757), (csv, 12_477)):
        assert tuple(frame.columns) == TRADE_COLUMNS and len(frame) == rows
        assert frame["time_ms"].is_monotonic_increasing
    assert capture["trade_id"].iloc[0] == 3_735_683_259
    assert not capture["taker_buy"].iloc[0]  # m=true: the buyer made, the taker sold
    assert np.isclose(csv["price"].iloc[0], 0.00141342)


@pytest.mark.shared_data
def test_trade_file_errors(shared_data: Path) -> None:
    with pytest.raises(SourceError, match=r"no ETHUSDT trades.*BTCUSDT"):
        read_trade_file(shared_data / CAPTURE, "ETHUSDT")
    with pytest.raises(SourceError, match=r"not a trade file.*timestamp,id,side,price,amount"):
        read_trade_file(shared_data / COINBASE)


def test_a_broken_capture_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "capture.txt"
    path.write_text('1 {"stream":"btcusdt@trade","data":{"e":"trade"}}\n')
    with pytest.raises(SourceError, match=r"capture\.txt:1"):
        read_trade_file(path)
