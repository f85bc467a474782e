"""The ccxt source with the real ccxt client: offline failure against a refused port, and
pagination / resume against a loopback server speaking Binance's REST protocol."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from research.marketdata import IngestError, IngestRequest, SourceError, ingest
from research.marketdata.sources import fetch_candle_pages, make_exchange
from tradepipe.exchange_rest import ohlcv_candles
from tradepipe.marketdata import MarketDataStore

DAY_MS = 86_400_000
JAN_1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
TWO_DAYS = (JAN_1, JAN_1 + 2 * DAY_MS)
BinanceStub = Any  # conftest.BinanceStub (conftest modules are not importable by name)


def stub_factory(url: str) -> Any:
    """exchange_factory for ingest: the real ccxt client, pointed at `url`."""
    return lambda exchange_id, timeout: make_exchange(exchange_id, timeout, api_url=url)


def request(start_ms: int | None, end_ms: int | None) -> IngestRequest:
    return IngestRequest("ccxt", "", "BTC/USDT", "1m", None, start_ms, end_ms)


def test_offline_fails_fast_with_one_clear_message(closed_port_url: str) -> None:
    exchange = make_exchange("binance", timeout_seconds=2, api_url=closed_port_url)
    began = time.monotonic()
    with pytest.raises(SourceError) as raised:
        list(fetch_candle_pages(exchange, "BTC/USDT", "1m", *TWO_DAYS))
    assert time.monotonic() - began < 5
    message = str(raised.value)
    assert message.startswith("cannot reach binance") and message.endswith("(offline?)")
    assert "Connection refused" in message and "\n" not in message


def test_offline_ingest_is_an_ingest_error_and_writes_nothing(
    store: MarketDataStore, closed_port_url: str
) -> None:
    with pytest.raises(IngestError, match="cannot reach binance"):
        ingest(store, request(*TWO_DAYS), exchange_factory=stub_factory(closed_port_url))
    assert store.list_series() == []


def test_pages_until_the_end(binance_stub: BinanceStub, two_days_1m: pd.DataFrame) -> None:
    exchange = make_exchange("binance", 5, api_url=binance_stub.url)
    pages = list(fetch_candle_pages(exchange, "BTCUSDT", "1m", *TWO_DAYS))
    assert [len(page) for page in pages] == [1000, 1000, len(two_days_1m) - 2000]
    assert binance_stub.requests == ["/api/v3/exchangeInfo"] + ["/api/v3/klines"] * 3
    fetched = pd.concat(pages, ignore_index=True)
    assert fetched["start_ms"].equals(two_days_1m["start_ms"])
    # raw klines keep what fetch_ohlcv drops: taker volume and trade counts
    assert fetched["trade_count"].equals(two_days_1m["trade_count"])
    assert fetched["taker_buy_volume"].notna().all()


def test_stops_at_the_end_it_was_given(binance_stub: BinanceStub) -> None:
    exchange = make_exchange("binance", 5, api_url=binance_stub.url)
    end = JAN_1 + 90 * 60_000
    pages = list(fetch_candle_pages(exchange, "BTCUSDT", "1m", JAN_1, end, limit=50))
    assert [len(page) for page in pages] == [50, 40]
    assert pd.concat(pages)["start_ms"].max() < end


def test_ingest_resumes_after_the_last_stored_candle(
    store: MarketDataStore, binance_stub: BinanceStub, two_days_1m: pd.DataFrame
) -> None:
    factory = stub_factory(binance_stub.url)
    first = ingest(store, request(JAN_1, JAN_1 + DAY_MS), exchange_factory=factory)
    assert first.rows_added == first.rows_fetched > 1400
    binance_stub.requests.clear()
    calls: list[tuple[int, int]] = []
    resumed = ingest(
        store,
        request(None, TWO_DAYS[1]),
        lambda done, total: calls.append((done, total)),
        exchange_factory=factory,
    )
    assert resumed.first_start_ms == first.last_start_ms + 60_000  # type: ignore[operator]
    assert (resumed.rows_added, resumed.rows_changed) == (resumed.rows_fetched, 0)
    assert resumed.rows_total == len(two_days_1m)
    assert binance_stub.requests.count("/api/v3/klines") == 2  # the second day only
    assert calls[-1][0] == calls[-1][1]
    stored = store.read_candles("binance", "BTCUSDT", "1m")
    assert stored["start_ms"].equals(two_days_1m["start_ms"])

    current = ingest(store, request(None, TWO_DAYS[1]), exchange_factory=factory)
    assert (current.rows_fetched, current.rows_added, current.first_start_ms) == (0, 0, None)


def test_resume_needs_something_stored(store: MarketDataStore, binance_stub: BinanceStub) -> None:
    with pytest.raises(IngestError, match=r"no stored binance BTCUSDT 1m candles.*give a start"):
        ingest(store, request(None, TWO_DAYS[1]), exchange_factory=stub_factory(binance_stub.url))


def test_unified_fetch_ohlcv_path(binance_stub: BinanceStub, two_days_1m: pd.DataFrame) -> None:
    # Every exchange but Binance spot goes through ccxt's unified fetch_ohlcv.
    from tradepipe.timeframes import parse_timeframe

    exchange = make_exchange("binance", 5, api_url=binance_stub.url)
    exchange.load_markets()
    page = ohlcv_candles(exchange, exchange.market("BTC/USDT"), parse_timeframe("1m"), JAN_1, 5)
    assert [c.start_ms for c in page] == two_days_1m["start_ms"].iloc[:5].tolist()
    assert [c.close for c in page] == pytest.approx(two_days_1m["close"].iloc[:5].tolist())
    assert {c.trade_count for c in page} == {None}  # fetch_ohlcv does not carry them


def test_unknown_market_timeframe_and_exchange(binance_stub: BinanceStub) -> None:
    exchange = make_exchange("binance", 5, api_url=binance_stub.url)
    with pytest.raises(SourceError, match="binance has no market 'DOGE/EUR'"):
        list(fetch_candle_pages(exchange, "DOGE/EUR", "1m", *TWO_DAYS))
    with pytest.raises(SourceError, match="no 7m candles"):
        list(fetch_candle_pages(exchange, "BTCUSDT", "7m", *TWO_DAYS))
    with pytest.raises(SourceError, match="unknown exchange 'nosuchex'"):
        make_exchange("nosuchex")
