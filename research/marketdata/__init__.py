"""Market data for research: sources (synthetic, CSV files, captures, exchange REST via
ccxt) and the idempotent ingest that fills the candle store. The store itself is the
kernel's, imported from one place only: `tradepipe.marketdata`."""

from research.marketdata.errors import IngestError, SourceError
from research.marketdata.ingest import IngestRequest, IngestResult, ingest
from research.marketdata.sources.trade_files import read_trade_file

__all__ = [
    "IngestError",
    "IngestRequest",
    "IngestResult",
    "SourceError",
    "ingest",
    "read_trade_file",
]
