"""Market-data sources; each returns candle frames (tradepipe.marketdata.frames) for a
symbol, timeframe and range. Errors a user can cause are SourceError (an IngestError)."""

from research.marketdata.sources.capture import capture_candles, read_capture_trades
from research.marketdata.sources.ccxt_rest import (
    estimated_pages,
    fetch_candle_pages,
    make_exchange,
)
from research.marketdata.sources.csv_files import file_layout, read_candle_file, read_trade_csv
from research.marketdata.sources.synthetic import (
    iter_synthetic_candles,
    synthetic_candles,
    synthetic_chunks,
)
from research.marketdata.sources.trade_files import read_trade_file

__all__ = [
    "capture_candles",
    "estimated_pages",
    "fetch_candle_pages",
    "file_layout",
    "iter_synthetic_candles",
    "make_exchange",
    "read_candle_file",
    "read_capture_trades",
    "read_trade_csv",
    "read_trade_file",
    "synthetic_candles",
    "synthetic_chunks",
]
