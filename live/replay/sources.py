"""What a replay plays: a recorded capture, or the synthetic market, as Binance messages.

A source yields `ReplayMessage`s in order, each with its offset on the source's own clock
(for pacing), its stream name, the exact text to send and, for trade messages, the trade
(for the replay's REST klines).

Capture: every message of the file as recorded, raw; pacing by the recorded receive times.
The REST depth snapshot line (no stream) is not a stream message and is passed over. With
`loop`, pass k > 0 re-encodes every message with `E` and `T` moved k spans later (the span
rounded up to whole seconds, so candle boundaries repeat) and trade ids `t` k id-spans
higher, so the loop continues one market instead of jumping back in time.

Synthetic: `SyntheticMarket` trades, hour by hour, formatted exactly as Binance formats
`<symbol>@trade` messages. `E` and `T` are the synthetic trade time; when the replay runs
paced (speed > 0) they are mapped to the wall clock, `wall start + (t - start) / speed`, so
the feed's event-to-receive latency measures the real delay. The start defaults to now
(then at speed 1 the synthetic market's clock is the wall clock) and to 2024-01-01 at
speed 0 (as fast as possible: times stay synthetic and the output is deterministic).
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tradepipe.binance import MalformedMessageError, parse_combined_message, parse_trade
from tradepipe.capture import iter_capture
from tradepipe.domain import Side, Trade
from tradepipe.synthetic import HOUR_MS, SyntheticMarket

STREAM_PREFIX = '{"stream":"'
DEFAULT_SYNTHETIC_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class ReplayMessage:
    offset_ns: int  # since the replay's origin, on the source's clock
    stream: str
    raw: str
    trade: Trade | None = None


class ReplaySource(Protocol):
    """Messages for the replay server; `symbols` are the ones it has trades of."""

    @property
    def description(self) -> str: ...

    @property
    def symbols(self) -> frozenset[str]: ...

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]: ...


def peek_stream(raw: str) -> str | None:
    """The stream name of a combined-stream message, read from its first bytes when the
    message is laid out as Binance sends it, else through the kernel's parser."""
    if raw.startswith(STREAM_PREFIX):
        end = raw.find('"', len(STREAM_PREFIX))
        if end > 0:
            return raw[len(STREAM_PREFIX) : end]
    try:
        return parse_combined_message(raw)[0]
    except MalformedMessageError:
        return None


def _trade_of(stream: str, raw: str) -> Trade | None:
    if not stream.endswith("@trade"):
        return None
    try:
        return parse_trade(parse_combined_message(raw)[1])
    except MalformedMessageError:
        return None  # forwarded as recorded; the feed counts it as malformed


class CaptureSource:
    """A capture file (`<receive ns> <raw JSON>` a line, see tradepipe.capture)."""

    def __init__(self, path: Path | str, *, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"capture file {self.path} not found")
        self.loop = loop
        first_ns: int | None = None
        last_ns = 0
        streams: set[str] = set()
        id_range: dict[str, tuple[int, int]] = {}
        count = 0
        for line in iter_capture(self.path):  # one pass up front: a bad file fails now
            stream = peek_stream(line.raw)
            if stream is None:
                continue
            count += 1
            first_ns = line.receive_ns if first_ns is None else first_ns
            last_ns = line.receive_ns
            streams.add(stream)
            trade = _trade_of(stream, line.raw)
            if trade is not None and trade.trade_id is not None:
                low, high = id_range.get(trade.symbol, (trade.trade_id, trade.trade_id))
                id_range[trade.symbol] = (min(low, trade.trade_id), max(high, trade.trade_id))
        if first_ns is None:
            raise ValueError(f"capture {self.path} holds no stream messages")
        self.message_count = count
        self.streams = frozenset(streams)
        self._first_ns = first_ns
        span_ms = (last_ns - first_ns) // 1_000_000 + 1
        self._span_ms = math.ceil(span_ms / 1000) * 1000 + 1000  # whole seconds, then a pause
        self._id_span = {symbol: high - low + 1 for symbol, (low, high) in id_range.items()}

    @property
    def description(self) -> str:
        return f"capture {self.path.name}"

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(stream.split("@", 1)[0].upper() for stream in self.streams)

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        repeat = 0
        while True:
            shift_ns = repeat * self._span_ms * 1_000_000
            for line in iter_capture(self.path):
                stream = peek_stream(line.raw)
                if stream is None:
                    continue
                raw = line.raw if repeat == 0 else self._shifted(line.raw, repeat)
                yield ReplayMessage(
                    line.receive_ns - self._first_ns + shift_ns, stream, raw, _trade_of(stream, raw)
                )
            if not self.loop:
                return
            repeat += 1

    def _shifted(self, raw: str, repeat: int) -> str:
        try:
            message = json.loads(raw)
        except ValueError:
            return raw
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, dict):
            return raw
        for key in ("E", "T"):
            if isinstance(data.get(key), int):
                data[key] += repeat * self._span_ms
        symbol = data.get("s")
        if data.get("e") == "trade" and isinstance(data.get("t"), int) and isinstance(symbol, str):
            data["t"] += repeat * self._id_span.get(symbol, 0)
        return json.dumps(message, separators=(",", ":"))


def trade_message(trade: Trade) -> str:
    """A trade as Binance's `<symbol>@trade` combined-stream message (E = T)."""
    buyer_is_maker = "true" if trade.taker_side is Side.SELL else "false"
    return (
        f'{{"stream":"{trade.symbol.lower()}@trade","data":{{"e":"trade","E":{trade.time_ms},'
        f'"s":"{trade.symbol}","t":{trade.trade_id},"p":"{trade.price:.8f}",'
        f'"q":"{trade.quantity:.8f}","T":{trade.time_ms},"m":{buyer_is_maker},"M":true}}}}'
    )


class SyntheticSource:
    """The synthetic market of `symbols` (one independent market each, same seed)."""

    def __init__(
        self,
        symbols: Iterable[str] = ("BTCUSDT",),
        *,
        seed: int = 7,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> None:
        names = [symbol.strip().upper() for symbol in symbols]
        if not names or not all(name.isalnum() and name.isascii() for name in names):
            raise ValueError(f"synthetic symbols must be like BTCUSDT, got {list(symbols)}")
        self.markets = [SyntheticMarket(name, seed) for name in sorted(set(names))]
        self.seed = seed
        self.start_ms = start_ms
        self.end_ms = end_ms
        # The market's hourly state is built from 2017 on, once (~0.1 s a symbol): do it
        # now, not in the first step of a paced replay, which would then start late.
        warm_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        for market in self.markets:
            market.hourly_states(warm_ms, warm_ms + HOUR_MS)

    @property
    def description(self) -> str:
        return f"synthetic market {', '.join(self.symbols_sorted)} (seed {self.seed})"

    @property
    def symbols_sorted(self) -> list[str]:
        return [market.symbol for market in self.markets]

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.symbols_sorted)

    def resolve_start_ms(self, wall_start_ns: int, speed: float) -> int:
        if self.start_ms is not None:
            return self.start_ms
        return wall_start_ns // 1_000_000 if speed > 0 else DEFAULT_SYNTHETIC_START_MS

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        start = self.resolve_start_ms(wall_start_ns, speed)
        wall_start_ms = wall_start_ns // 1_000_000
        chunk_start = start
        while self.end_ms is None or chunk_start < self.end_ms:
            chunk_end = (chunk_start // HOUR_MS + 1) * HOUR_MS
            if self.end_ms is not None:
                chunk_end = min(chunk_end, self.end_ms)
            per_market = [self._trades(m, chunk_start, chunk_end) for m in self.markets]
            # equal times go in symbol order (the rank), so the output is deterministic
            for synthetic_ms, _rank, trade in heapq.merge(*per_market):
                if speed > 0:
                    shown_ms = wall_start_ms + math.floor((synthetic_ms - start) / speed)
                    trade = Trade(
                        trade.symbol, shown_ms, trade.price, trade.quantity,
                        trade.taker_side, trade.trade_id,
                    )  # fmt: skip
                stream = f"{trade.symbol.lower()}@trade"
                yield ReplayMessage(
                    (synthetic_ms - start) * 1_000_000, stream, trade_message(trade), trade
                )
            chunk_start = chunk_end

    def _trades(
        self, market: SyntheticMarket, start_ms: int, end_ms: int
    ) -> Iterator[tuple[int, int, Trade]]:
        frame = market.trades(start_ms, end_ms)
        rank = self.markets.index(market)
        rows = zip(
            frame["time_ms"].tolist(),
            frame["trade_id"].tolist(),
            frame["price"].tolist(),
            frame["quantity"].tolist(),
            frame["taker_buy"].tolist(),
            strict=True,
        )
        for time_ms, trade_id, price, quantity, taker_buy in rows:
            side = Side.BUY if taker_buy else Side.SELL
            # the values as the message states them: what a client parses is the record
            shown = Trade(
                market.symbol, time_ms, float(f"{price:.8f}"), float(f"{quantity:.8f}"),
                side, trade_id,
            )  # fmt: skip
            yield time_ms, rank, shown
