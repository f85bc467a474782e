"""Binance WebSocket captures -> trades -> candles, through the kernel's capture reader (the
replay server reads captures through it too, so research and replay see the same trades)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.common import clip_range, fit_timeframe, require_file
from tradepipe.binance import parse_combined_message
from tradepipe.candles import aggregate_trades, trades_to_frame
from tradepipe.capture import CaptureFormatError, capture_trades, iter_capture
from tradepipe.timeframes import Timeframe, parse_timeframe


def read_capture_trades(path: Path, symbol: str | None = None) -> pd.DataFrame:
    """The trades of one symbol in a capture as TRADE_COLUMNS, ordered by time then trade id.

    Without `symbol` the capture must hold trades of exactly one symbol.
    """
    path = require_file(path, "capture")
    wanted = symbol.replace("/", "").replace("-", "").upper() if symbol else None
    try:
        trades = list(capture_trades(path, wanted))
    except CaptureFormatError as error:
        raise SourceError(f"not a Binance capture: {error}") from None
    found = _trade_symbols(path) if not trades or wanted is None else {wanted}
    if not trades:
        held = ", ".join(sorted(found)) or "no trades at all"
        raise SourceError(f"{path}: no {wanted or ''} trades in the capture (it holds {held})")
    if len(found) > 1:
        raise SourceError(
            f"{path}: the capture holds trades of {', '.join(sorted(found))}; choose a symbol"
        )
    frame = trades_to_frame(trades).astype({"trade_id": "int64"})
    if not frame["time_ms"].is_monotonic_increasing:
        frame = frame.sort_values(["time_ms", "trade_id"], kind="stable", ignore_index=True)
    return frame


def capture_candles(
    path: Path,
    symbol: str,
    timeframe: str | Timeframe,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    """Complete candles of `symbol` built from a capture's trades, start in [start_ms, end_ms).

    A recording starts and stops mid-interval, so the intervals holding its first and last
    trade are partial (a wrong open or close, too little volume) and are left out.
    """
    tf = parse_timeframe(timeframe)
    trades = read_capture_trades(path, symbol)
    candles = fit_timeframe(aggregate_trades(trades, tf), None, tf, Path(path))
    return clip_range(candles.iloc[1:-1], start_ms, end_ms)


def _trade_symbols(path: Path) -> set[str]:
    symbols = set()
    for line in iter_capture(path):
        if "@trade" in line.raw:
            stream, data = parse_combined_message(line.raw)
            if stream.endswith("@trade"):
                symbols.add(str(data.get("s", "")))
    return symbols
