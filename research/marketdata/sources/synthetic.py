"""The synthetic market as a candle source: its trades aggregated by the kernel, in chunks."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from tradepipe.candles import aggregate_trades
from tradepipe.marketdata.frames import conform_candles, empty_candles
from tradepipe.synthetic import SyntheticMarket
from tradepipe.timeframes import Timeframe, parse_timeframe

DAY_MS = 86_400_000


def synthetic_chunks(
    timeframe: str | Timeframe, start_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """[chunk start, chunk end) bounds covering the candles that start in [start_ms, end_ms).

    Chunks are a whole number of candles and at least a day long, so each holds complete
    candles and about a day of trades (bounded memory); the first candle is the first one
    starting at or after start_ms, and the last candle may end after end_ms.
    """
    tf = parse_timeframe(timeframe)
    step = tf.milliseconds
    first = -(-start_ms // step) * step
    stop = -(-end_ms // step) * step
    chunk = -(-DAY_MS // step) * step
    return [(begin, min(begin + chunk, stop)) for begin in range(first, stop, chunk)]


def iter_synthetic_candles(
    market: SyntheticMarket, timeframe: str | Timeframe, start_ms: int, end_ms: int
) -> Iterator[pd.DataFrame]:
    """Complete candles of `market` starting in [start_ms, end_ms), one frame per chunk."""
    tf = parse_timeframe(timeframe)
    for begin, end in synthetic_chunks(tf, start_ms, end_ms):
        trades = market.trades(begin, end)
        yield conform_candles(aggregate_trades(trades, tf))


def synthetic_candles(
    symbol: str, timeframe: str | Timeframe, start_ms: int, end_ms: int, seed: int = 7
) -> pd.DataFrame:
    """All synthetic candles of `symbol` starting in [start_ms, end_ms) as one frame."""
    market = SyntheticMarket(symbol=symbol, seed=seed)
    chunks = list(iter_synthetic_candles(market, timeframe, start_ms, end_ms))
    return pd.concat(chunks, ignore_index=True) if chunks else empty_candles()
