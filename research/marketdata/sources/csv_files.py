"""CSV market-data files, recognised by their content (gzip by the `.gz` suffix).

Three layouts, the ones exchanges and public datasets deliver:
- candles with the header `timestamp,open,high,low,close,volume`; timestamps ISO-8601
  (UTC unless an offset is given) or integer epoch milliseconds;
- Binance kline rows without a header (12 columns, read through
  tradepipe.binance.parse_kline_row, the one definition of their meaning); open times in
  microseconds (Binance's dumps since 2025) are converted to milliseconds;
- trades with the header `timestamp,id,side,price,amount` (ms, trade id, taker side).

Candles finer than the requested timeframe are resampled; trades are aggregated. Plain
OHLCV files carry no taker volume or trade count, so those stay unknown.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.common import (
    clip_range,
    detect_interval_ms,
    drop_empty_intervals,
    first_line,
    fit_timeframe,
    require_file,
)
from tradepipe.binance import KLINE_ROW_FIELDS, MalformedMessageError, parse_kline_row
from tradepipe.candles import TRADE_COLUMNS, OutOfOrderError, aggregate_trades, candles_to_frame
from tradepipe.capture import open_text
from tradepipe.timeframes import Timeframe, parse_timeframe

CANDLE_HEADER = ("timestamp", "open", "high", "low", "close", "volume")
TRADE_HEADER = ("timestamp", "id", "side", "price", "amount")
EXPECTED_LAYOUTS = (
    f"a header `{','.join(CANDLE_HEADER)}` (candles), `{','.join(TRADE_HEADER)}` (trades), "
    f"or Binance's {KLINE_ROW_FIELDS}-column kline rows without a header"
)
_EPOCH_MS_FLOOR = 100_000_000_000  # 1973 in ms; smaller integers are seconds, not ms
_EPOCH_US_FLOOR = 100_000_000_000_000  # 1973 in us: larger open times are microseconds
_DIGITS = re.compile(r"^\d+$")
CAPTURE_LINE = re.compile(r"^\d+ \{")


def file_layout(path: Path) -> str:
    """ "candles", "klines" or "trades", from the first line; SourceError otherwise."""
    line = first_line(path)
    if CAPTURE_LINE.match(line):
        raise SourceError(f"{path}: this is a Binance WebSocket capture; use the capture source")
    fields = tuple(field.strip().lower() for field in line.split(","))
    if fields == CANDLE_HEADER:
        return "candles"
    if fields == TRADE_HEADER:
        return "trades"
    if len(fields) == KLINE_ROW_FIELDS and _DIGITS.match(fields[0]):
        return "klines"
    raise SourceError(
        f"{path}: unrecognised columns {[field[:30] for field in fields[:13]]}; "
        f"expected {EXPECTED_LAYOUTS}"
    )


def read_candle_file(
    path: Path,
    timeframe: str | Timeframe,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    """Candles of `timeframe` with start in [start_ms, end_ms) from any of the three layouts."""
    path = require_file(path, "csv")
    tf = parse_timeframe(timeframe)
    layout = file_layout(path)
    if layout == "trades":
        trades = read_trade_csv(path)
        return clip_range(_aggregate(trades, tf, path), start_ms, end_ms)
    raw = _read_klines(path) if layout == "klines" else _read_ohlcv(path)
    interval = detect_interval_ms(raw["start_ms"].to_numpy())
    candles = fit_timeframe(drop_empty_intervals(raw), interval, tf, path)
    return clip_range(candles, start_ms, end_ms)


def candle_file_interval_ms(path: Path) -> int | None:
    """The interval between a candle file's candles (OHLCV or klines), as stored."""
    path = require_file(path, "csv")
    raw = _read_klines(path) if file_layout(path) == "klines" else _read_ohlcv(path)
    return detect_interval_ms(raw["start_ms"].to_numpy())


def read_trade_csv(path: Path) -> pd.DataFrame:
    """A `timestamp,id,side,price,amount` file -> TRADE_COLUMNS in time (then id) order."""
    try:
        raw = pd.read_csv(
            path,
            dtype={"timestamp": "int64", "id": "int64", "side": "str"},
            usecols=list(TRADE_HEADER),
        )
        price = raw["price"].astype("float64")
        quantity = raw["amount"].astype("float64")
    except (ValueError, TypeError) as error:
        raise SourceError(f"{path}: not a trade file of {list(TRADE_HEADER)}: {error}") from None
    side = raw["side"].str.strip().str.lower()
    unknown = sorted(set(side.unique()) - {"buy", "sell"}, key=str)
    if unknown:
        raise SourceError(f"{path}: column side must be buy or sell (the taker), found {unknown}")
    trades = pd.DataFrame(
        {
            "time_ms": raw["timestamp"].to_numpy(),
            "trade_id": raw["id"].to_numpy(),
            "price": price.to_numpy(),
            "quantity": quantity.to_numpy(),
            "taker_buy": (side == "buy").to_numpy(dtype=bool),
        },
        columns=list(TRADE_COLUMNS),
    )
    if not trades["time_ms"].is_monotonic_increasing:
        trades = trades.sort_values(["time_ms", "trade_id"], kind="stable", ignore_index=True)
    return trades


def _aggregate(trades: pd.DataFrame, timeframe: Timeframe, path: Path) -> pd.DataFrame:
    try:
        return fit_timeframe(aggregate_trades(trades, timeframe), None, timeframe, path)
    except OutOfOrderError as error:  # pragma: no cover - read_trade_csv sorts
        raise SourceError(f"{path}: {error}") from None


def _read_ohlcv(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype={"timestamp": "str"})
        if tuple(column.strip().lower() for column in raw.columns) != CANDLE_HEADER:
            raise ValueError(f"columns {list(raw.columns)}")
        raw.columns = list(CANDLE_HEADER)
        prices = {name: raw[name].astype("float64").to_numpy() for name in CANDLE_HEADER[1:]}
    except (ValueError, TypeError) as error:
        raise SourceError(f"{path}: not a candle file of {list(CANDLE_HEADER)}: {error}") from None
    return pd.DataFrame({"start_ms": _parse_timestamps(raw["timestamp"], path), **prices})


def _parse_timestamps(stamps: pd.Series, path: Path) -> npt.NDArray[np.int64]:
    text = stamps.astype("str").str.strip()
    if bool(text.str.fullmatch(r"\d+").all()):
        values = np.asarray(text.astype("int64"), dtype=np.int64)
        if len(values) and values.min() < _EPOCH_MS_FLOOR:
            raise SourceError(
                f"{path}: integer timestamps such as {values.min()} look like seconds; "
                "expected milliseconds since the epoch"
            )
        return values
    try:
        parsed = pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise SourceError(
            f"{path}: timestamps must be ISO-8601 (2024-01-01T00:00:00Z) or epoch ms: {error}"
        ) from None
    return np.asarray(parsed.dt.as_unit("ms").astype("int64"), dtype=np.int64)


def _read_klines(path: Path) -> pd.DataFrame:
    candles = []
    with open_text(path) as lines:
        for number, row in enumerate(csv.reader(lines), start=1):
            if not row:
                continue
            try:
                candles.append(parse_kline_row(row, symbol="", timeframe="1m"))
            except MalformedMessageError as error:
                raise SourceError(f"{path}:{number}: {error}") from None
    frame = candles_to_frame(candles)
    if len(frame) and frame["start_ms"].max() >= _EPOCH_US_FLOOR:
        frame["start_ms"] //= 1000
    return frame.sort_values("start_ms", kind="stable", ignore_index=True)
