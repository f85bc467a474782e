"""Fixtures of the market-data tests: a temporary store, the synthetic candles they share,
and a loopback HTTP server speaking the part of Binance's spot REST API that ccxt uses for
candles (exchangeInfo, klines), so the real ccxt client is tested without a network."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from research.marketdata.sources import synthetic_candles
from tradepipe.marketdata import MarketDataStore

MAX_LIMIT = 1000
EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 0,
    "rateLimits": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "permissions": ["SPOT"],
            "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                 "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000",
                 "stepSize": "0.00001"},
            ],
        }
    ],
}  # fmt: skip


@dataclass
class BinanceStub:
    """Serves `klines` (Binance's 12-column rows, sorted by open time) and records requests."""

    klines: list[list[Any]]
    url: str = ""
    requests: list[str] = field(default_factory=list)

    def klines_between(self, start: int, end: int, limit: int) -> list[list[Any]]:
        rows = [row for row in self.klines if start <= row[0] <= end]
        return rows[: min(limit, MAX_LIMIT)]


@contextmanager
def serve(stub: BinanceStub) -> Iterator[BinanceStub]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            stub.requests.append(url.path)
            if url.path == "/api/v3/exchangeInfo":
                self._send(200, EXCHANGE_INFO)
            elif url.path == "/api/v3/klines" and query.get("symbol") == "BTCUSDT":
                rows = stub.klines_between(
                    int(query.get("startTime", 0)),
                    int(query.get("endTime", 2**62)),
                    int(query.get("limit", 500)),
                )
                self._send(200, rows)
            else:
                self._send(400, {"code": -1121, "msg": "Invalid symbol."})

        def _send(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def kline_rows(candles: Any, interval_ms: int) -> list[list[Any]]:
    """Candle frame rows -> Binance kline rows (strings for decimals, as Binance sends)."""
    return [
        [int(row.start_ms), f"{row.open:.2f}", f"{row.high:.2f}", f"{row.low:.2f}",
         f"{row.close:.2f}", f"{row.volume:.8f}", int(row.start_ms) + interval_ms - 1,
         f"{row.volume * row.close:.8f}", int(row.trade_count), f"{row.taker_buy_volume:.8f}",
         f"{row.taker_buy_volume * row.close:.8f}", "0"]
        for row in candles.itertuples()
    ]  # fmt: skip


DAY_MS = 86_400_000
JAN_1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.fixture
def store(tmp_path: Path) -> MarketDataStore:
    return MarketDataStore(tmp_path / "market_data")


@pytest.fixture(scope="session")
def two_days_1m() -> pd.DataFrame:
    """Synthetic BTCUSDT 1m candles of 2024-01-01 and 02 (about 2 880: three kline pages)."""
    return synthetic_candles("BTCUSDT", "1m", JAN_1, JAN_1 + 2 * DAY_MS)


@pytest.fixture
def binance_stub(two_days_1m: pd.DataFrame) -> Iterator[BinanceStub]:
    """A Binance REST stub on loopback serving `two_days_1m` as BTCUSDT 1m klines."""
    with serve(BinanceStub(kline_rows(two_days_1m, 60_000))) as stub:
        yield stub


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting is refused at once, like being offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
