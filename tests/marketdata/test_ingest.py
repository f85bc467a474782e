"""Ingest: source -> store, idempotent, chunked with progress, and one clear IngestError
for every problem a user can cause."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.marketdata import IngestError, IngestRequest, ingest
from tradepipe.marketdata import MarketDataStore

DAY_MS = 86_400_000
JAN_30 = 1_706_572_800_000  # 2024-01-30T00:00:00Z: three days that cross into February
GAPPY = "altbtc_1m_2017-11_gappy.csv.gz"
CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"


def synthetic(
    start_ms: int | None = JAN_30, end_ms: int | None = JAN_30 + 3 * DAY_MS, **changes: object
) -> IngestRequest:
    fields: dict[str, object] = {
        "source": "synthetic",
        "exchange": None,
        "symbol": "BTCUSDT",
        "timeframe": "1m",
        "path": None,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }
    fields.update(changes)
    return IngestRequest(**fields)  # type: ignore[arg-type]


def mtimes(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in root.rglob("*.parquet")}


def test_synthetic_ingest_is_idempotent_and_reports_progress(store: MarketDataStore) -> None:
    calls: list[tuple[int, int]] = []
    first = ingest(store, synthetic(), lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]  # one chunk a day
    assert (first.exchange, first.symbol, first.timeframe) == ("synthetic", "BTCUSDT", "1m")
    assert first.rows_fetched == first.rows_added == first.rows_total > 4000
    assert (first.first_start_ms, first.last_start_ms) == (JAN_30, JAN_30 + 3 * DAY_MS - 60_000)
    before = mtimes(store.root)
    assert sorted(path.name for path in before) == [
        "month=2024-01.parquet",
        "month=2024-02.parquet",
    ]

    again = ingest(store, synthetic())
    assert (again.rows_added, again.rows_changed) == (0, 0)
    assert again.rows_total == first.rows_total
    assert mtimes(store.root) == before


def test_overlapping_ranges_agree(store: MarketDataStore) -> None:
    ingest(store, synthetic(JAN_30, JAN_30 + 2 * DAY_MS))
    second_day = len(store.read_candles("synthetic", "BTCUSDT", "1m", JAN_30 + DAY_MS))
    later = ingest(store, synthetic(JAN_30 + DAY_MS, JAN_30 + 3 * DAY_MS))
    assert later.rows_changed == 0
    assert later.rows_added == later.rows_fetched - second_day


def test_candles_are_complete_even_for_unaligned_ranges(store: MarketDataStore) -> None:
    ingest(store, synthetic(JAN_30 + 90_000, JAN_30 + 10 * 60_000 + 1, timeframe="5m"))
    stored = store.read_candles("synthetic", "BTCUSDT", "5m")
    assert stored["start_ms"].tolist() == [JAN_30 + 5 * 60_000, JAN_30 + 10 * 60_000]
    whole = ingest(store, synthetic(JAN_30, JAN_30 + DAY_MS, timeframe="5m"))
    assert whole.rows_changed == 0  # the early candles were already complete


def test_seed_changes_the_market(store: MarketDataStore) -> None:
    ingest(store, synthetic(JAN_30, JAN_30 + DAY_MS))
    other = ingest(store, synthetic(JAN_30, JAN_30 + DAY_MS, seed=8))
    assert other.rows_changed > 0


@pytest.mark.shared_data
def test_csv_ingest_under_the_given_exchange(store: MarketDataStore, shared_data: Path) -> None:
    request = IngestRequest("csv", "Coinbase", "ALT/BTC", "5m", shared_data / GAPPY)
    result = ingest(store, request)
    assert (result.exchange, result.symbol, result.timeframe) == ("coinbase", "ALTBTC", "5m")
    assert result.rows_added == result.rows_total == 2877
    again = ingest(store, request)
    assert (again.rows_added, again.rows_changed) == (0, 0)
    default = ingest(store, IngestRequest("csv", None, "ALTBTC", "1h", shared_data / GAPPY))
    assert default.exchange == "binance"


@pytest.mark.shared_data
def test_capture_ingest(store: MarketDataStore, shared_data: Path) -> None:
    result = ingest(store, IngestRequest("capture", "", "BTCUSDT", "1s", shared_data / CAPTURE))
    assert (result.exchange, result.rows_added) == ("binance", 343)
    series = store.list_series()[0]
    assert (series.symbol, series.timeframe, series.rows) == ("BTCUSDT", "1s", 343)


def expect_error(store: MarketDataStore, request: IngestRequest, *fragments: str) -> None:
    with pytest.raises(IngestError) as raised:
        ingest(store, request)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    assert store.list_series() == []


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"source": "parquet"}, ("unknown source 'parquet'", "synthetic, csv, capture, ccxt")),
        ({"timeframe": "7x"}, ("timeframe", "7x")),
        ({"timeframe": "2w"}, ("timeframe", "2w")),
        ({"start_ms": JAN_30 + DAY_MS, "end_ms": JAN_30}, ("empty range", "2024-01-31")),
        ({"start_ms": JAN_30, "end_ms": JAN_30}, ("empty range",)),
        ({"start_ms": JAN_30 + 1, "end_ms": JAN_30 + 2}, ("no candles", "2024-01-30")),
        ({"start_ms": None}, ("needs both a start and an end",)),
        ({"start_ms": 0, "end_ms": 60_000}, ("starts at 2017-01-01",)),
        ({"exchange": "binance"}, ("stored under exchange 'synthetic'",)),
        ({"path": Path("file.csv")}, ("takes no file",)),
        ({"symbol": "BTC USDT"}, ("symbol 'BTC USDT'",)),
        ({"seed": -3}, ("seed",)),
        ({"source": "csv"}, ("csv source needs a file",)),
        ({"source": "capture", "path": Path("missing.txt.gz")}, ("missing.txt.gz", "no such file")),
    ],
)
def test_bad_requests_are_one_clear_ingest_error(
    store: MarketDataStore, changes: dict[str, object], fragments: tuple[str, ...]
) -> None:
    expect_error(store, synthetic(**changes), *fragments)  # type: ignore[arg-type]


def test_wrong_columns_name_the_file(store: MarketDataStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    expect_error(store, IngestRequest("csv", "", "X", "1m", bad), "bad.csv", "'when', 'what'")


@pytest.mark.shared_data
def test_csv_range_without_data(store: MarketDataStore, shared_data: Path) -> None:
    request = IngestRequest("csv", "", "X", "1m", shared_data / GAPPY, JAN_30, JAN_30 + DAY_MS)
    expect_error(store, request, "no candles", "2024-01-30", GAPPY)


@pytest.mark.shared_data
def test_coarser_file_than_requested(store: MarketDataStore, shared_data: Path) -> None:
    path = shared_data / "coinbase_btcusd_1h_2017-2019.csv.gz"
    expect_error(store, IngestRequest("csv", "", "BTCUSD", "1m", path), "holds 1h candles")


def test_invalid_candles_in_a_file_write_nothing(store: MarketDataStore, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,10,11,9,10,1\n"
        "2024-01-01T00:01:00Z,10,9,9,10,1\n"
    )
    expect_error(store, IngestRequest("csv", "", "X", "1m", path), "broken.csv", "high is below")


def test_results_are_plain_values(store: MarketDataStore) -> None:
    result = ingest(store, synthetic(JAN_30, JAN_30 + 3_600_000, timeframe="1h"))
    assert result.rows_fetched == 1
    frame = store.read_candles("synthetic", "BTCUSDT", "1h")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
