"""One entry point for "a file of trades", whichever kind it is (detected by content)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.capture import read_capture_trades
from research.marketdata.sources.common import first_line, require_file
from research.marketdata.sources.csv_files import (
    CAPTURE_LINE,
    TRADE_HEADER,
    file_layout,
    read_trade_csv,
)


def read_trade_file(path: Path, symbol: str | None = None) -> pd.DataFrame:
    """Trades (TRADE_COLUMNS, time order) from a trade CSV `timestamp,id,side,price,amount`
    or a Binance WebSocket capture. `symbol` picks one market of a capture; a trade CSV holds
    one market and ignores it. Raises SourceError naming the file and what was expected.
    """
    path = require_file(path, "trade file")
    if CAPTURE_LINE.match(first_line(path)):
        return read_capture_trades(path, symbol)
    try:
        layout = file_layout(path)
    except SourceError:
        layout = "unknown"
    if layout != "trades":
        raise SourceError(
            f"{path}: not a trade file; expected a CSV with the header "
            f"`{','.join(TRADE_HEADER)}` or a Binance WebSocket capture "
            "(`<receive time ns> <JSON>` lines)"
        )
    return read_trade_csv(path)
