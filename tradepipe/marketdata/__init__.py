"""The candle store: parquet series partitioned by exchange, symbol and timeframe.

In the kernel because research writes it and others read it (the dashboard's candle charts);
the sources and the ingest that fill it are research's (`research.marketdata`).
"""

from tradepipe.marketdata.frames import CandleValidationError
from tradepipe.marketdata.store import MarketDataStore, SeriesInfo, SeriesKeyError, WriteResult

__all__ = [
    "CandleValidationError",
    "MarketDataStore",
    "SeriesInfo",
    "SeriesKeyError",
    "WriteResult",
]
