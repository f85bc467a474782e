"""Binance wire formats: combined-stream messages and REST kline rows.

One parser for both sides: the research capture source and the live WebSocket feed read
Binance's messages through these functions, so a capture replays exactly as it traded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from tradepipe.domain import Candle, Side, Trade
from tradepipe.timeframes import Timeframe, parse_timeframe


class MalformedMessageError(ValueError):
    """A message that is not what Binance sends; callers count it and skip it."""


def parse_combined_message(raw: str | bytes) -> tuple[str, dict[str, Any]]:
    """Split a combined-stream message `{"stream": ..., "data": {...}}` into its parts."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedMessageError(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MalformedMessageError("a combined-stream message is a JSON object")
    stream, data = message.get("stream"), message.get("data")
    if not isinstance(stream, str) or not isinstance(data, dict):
        raise MalformedMessageError("a combined-stream message needs 'stream' and 'data'")
    return stream, data


def parse_trade(data: dict[str, Any]) -> Trade:
    """A `<symbol>@trade` payload -> Trade. `m` true means the buyer was the maker, so the
    taker (aggressor) sold.

    Strict on purpose: one "NaN", negative or infinite price would poison every candle and
    feature of the symbol, and a float time or id would be silently truncated.
    """
    try:
        if data["e"] != "trade":
            raise MalformedMessageError(f"not a trade event: {data['e']!r}")
        buyer_is_maker, time_ms, trade_id = data["m"], data["T"], data["t"]
        price, quantity = float(data["p"]), float(data["q"])
        symbol = data["s"]
    except KeyError as error:
        raise MalformedMessageError(f"trade message lacks field {error}") from None
    except (TypeError, ValueError) as error:
        raise MalformedMessageError(f"trade message has a bad number: {error}") from None
    if not isinstance(buyer_is_maker, bool):
        raise MalformedMessageError("field 'm' must be a boolean")
    if type(time_ms) is not int or type(trade_id) is not int:
        raise MalformedMessageError("fields 'T' and 't' must be integers")
    if not isinstance(symbol, str) or not symbol:
        raise MalformedMessageError("field 's' must be the symbol")
    if not (0.0 < price < math.inf and 0.0 < quantity < math.inf):
        raise MalformedMessageError(f"implausible price {price} or quantity {quantity}")
    return Trade(
        symbol=symbol,
        time_ms=time_ms,
        price=price,
        quantity=quantity,
        taker_side=Side.SELL if buyer_is_maker else Side.BUY,
        trade_id=trade_id,
    )


class _TradePayload(msgspec.Struct):
    """The fields of a trade event that `parse_trade` reads, with the types it demands."""

    e: str
    s: str
    t: int
    p: str | float
    q: str | float
    T: int
    m: bool
    E: int | None = None


class _TradeMessage(msgspec.Struct):
    stream: str
    data: _TradePayload


_decode_trade_message = msgspec.json.Decoder(_TradeMessage).decode


def decode_trade_message(raw: str) -> tuple[str, Trade, int | None] | None:
    """The feed's hot path: a combined-stream trade message -> (stream, Trade, event time
    `E` or None), decoded straight into typed fields (msgspec: a third of `json.loads`'s
    time, with no dict to pick apart). None for anything else, well formed or not: the
    caller then asks `parse_combined_message` and `parse_trade`, which say what it is.
    Whatever this accepts, those accept with the same Trade (tested as a property)."""
    try:
        message = _decode_trade_message(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    data = message.data
    if data.e != "trade" or not data.s:
        return None
    try:
        price, quantity = float(data.p), float(data.q)
    except ValueError:
        return None
    if not (0.0 < price < math.inf and 0.0 < quantity < math.inf):
        return None
    trade = Trade(
        symbol=data.s,
        time_ms=data.T,
        price=price,
        quantity=quantity,
        taker_side=Side.SELL if data.m else Side.BUY,
        trade_id=data.t,
    )
    return message.stream, trade, data.E


KLINE_ROW_FIELDS = 12


def parse_kline_row(row: Sequence[Any], symbol: str, timeframe: Timeframe | str) -> Candle:
    """One row of Binance's 12-column kline format (REST `klines`, data dumps) -> Candle.

    Columns: open time, open, high, low, close, volume, close time, quote volume,
    trade count, taker buy base volume, taker buy quote volume, ignore.
    """
    if len(row) != KLINE_ROW_FIELDS:
        raise MalformedMessageError(
            f"a kline row has {KLINE_ROW_FIELDS} columns, this one has {len(row)}"
        )
    try:
        return Candle(
            symbol=symbol,
            timeframe=parse_timeframe(timeframe),
            start_ms=int(row[0]),
            open=float(row[1]),
            high=float(row[2]),
            low=float(row[3]),
            close=float(row[4]),
            volume=float(row[5]),
            taker_buy_volume=float(row[9]),
            trade_count=int(row[8]),
        )
    except (TypeError, ValueError) as error:
        raise MalformedMessageError(f"kline row has a bad value: {error}") from None
