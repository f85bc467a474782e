"""Market data for research: sources (synthetic, CSV files, captures, exchange REST via
ccxt), a partitioned parquet candle store, and the idempotent ingest that joins them."""

from research.marketdata.errors import IngestError, SourceError
from research.marketdata.ingest import IngestRequest, IngestResult, ingest
from research.marketdata.sources.trade_files import read_trade_file
from tradepipe.marketdata.frames import CandleValidationError
from tradepipe.marketdata.store import MarketDataStore, SeriesInfo, SeriesKeyError, WriteResult

__all__ = [
    "CandleValidationError",
    "IngestError",
    "IngestRequest",
    "IngestResult",
    "MarketDataStore",
    "SeriesInfo",
    "SeriesKeyError",
    "SourceError",
    "WriteResult",
    "ingest",
    "read_trade_file",
]
