"""Whether a venue lists a symbol, asked over its REST API on loopback: the replay's
Binance-style server (which answers `?symbol=` as Binance does) and a venue that ignores
the parameter and sends its whole list, with statuses."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support import venue_rest
from tradepipe.venue_symbols import (
    SymbolListError,
    UnsupportedExchangeError,
    check_exchange,
    listed_symbol_status,
    symbol_problem,
)


def test_the_replay_answers_as_binance_does() -> None:
    with venue_rest(("BTCUSDT", "ETHUSDT")) as url:
        assert listed_symbol_status(url, "BTCUSDT") == "TRADING"
        assert listed_symbol_status(url, "NOPEUSDT") is None  # HTTP 400, code -1121


@pytest.fixture
def whole_list_venue() -> Iterator[str]:
    """A venue that ignores ?symbol= and lists everything; one symbol is halted, and
    /broken/ answers something that is not exchangeInfo."""
    listing = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"},
                           {"symbol": "OLDUSDT", "status": "BREAK"}]}  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>" if self.path.startswith("/broken/") else json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_venue_sending_its_whole_list(whole_list_venue: str) -> None:
    assert listed_symbol_status(whole_list_venue, "BTCUSDT") == "TRADING"
    assert listed_symbol_status(whole_list_venue, "NOPEUSDT") is None
    status = listed_symbol_status(whole_list_venue, "OLDUSDT")
    assert status == "BREAK"
    assert symbol_problem("binance", "OLDUSDT", status) == (
        "symbol OLDUSDT is not trading on binance (status BREAK)"
    )
    assert symbol_problem("binance", "BTCUSDT", "TRADING") is None
    with pytest.raises(SymbolListError, match="not an exchangeInfo answer"):
        listed_symbol_status(f"{whole_list_venue}/broken", "BTCUSDT")


def test_an_unreachable_venue_is_an_error_not_an_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SymbolListError, match=f"127.0.0.1:{port}"):
        listed_symbol_status(f"http://127.0.0.1:{port}", "BTCUSDT", timeout_seconds=2)


def test_only_the_exchanges_the_engine_trades() -> None:
    assert check_exchange(" Binance ") == "binance"
    with pytest.raises(UnsupportedExchangeError, match="'kraken' is not supported"):
        check_exchange("kraken")
