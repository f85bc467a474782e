"""Per-symbol candle pipeline: 1 s candles -> each bot timeframe -> shared feature states.

One `SymbolPipeline` per traded symbol. Its 1 s candles (from `live.feeds.SecondCandles`,
gaps already repaired) are resampled once per timeframe some bot uses, and each closed
candle updates one `IncrementalFeatures` per feature spec in use on that timeframe: every
bot on the same (symbol, timeframe, spec hash) reads the same row, computed once.

The first candle of a timeframe is left out when the stream began inside its interval (the
engine started, or the bot arrived, mid-interval): built from part of its trades it would
be wrong, not just early. When the exchange can be asked (a REST side is configured), a new
timeframe's states are warmed up from its candles before the first complete one, so a bot
decides from its first complete candle on, after a restart too.

Each timeframe keeps its last `history` closed candles, so a feature state created later
(a bot added at run time, a model swapped for one trained on another spec) is warmed up
from them at once instead of waiting `warmup` candles of live data. Such a state starts
from the oldest kept candle rather than from the first candle ever seen; exponential
features (EMA, RSI) therefore differ from a state that saw more history by a weight that
decays with the warm-up, as they would after any restart. Without a REST side, `warmup`
candles of the bot's timeframe pass before its first decision.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from live.feeds import BackfillError
from tradepipe.candles import CandleResampler
from tradepipe.domain import Candle
from tradepipe.features import CandleDataError, FeatureSpec, IncrementalFeatures
from tradepipe.timeframes import ONE_SECOND, Timeframe, parse_timeframe

__all__ = ["ClosedRow", "FeatureStream", "NoBackfill", "SymbolPipeline", "TimeframeStream"]

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class FeatureStream:
    """Features of one (symbol, timeframe, spec), shared by the bots in `bots`."""

    symbol: str
    timeframe: Timeframe
    spec: FeatureSpec
    state: IncrementalFeatures
    bots: set[str] = field(default_factory=set)
    last_row: tuple[float, ...] | None = None

    @property
    def ready(self) -> bool:
        return self.state.ready

    @property
    def warmup_remaining(self) -> int:
        return max(0, self.spec.warmup + 1 - self.state.rows)

    def update(self, candle: Candle) -> tuple[float, ...] | None:
        try:
            row = self.state.update(candle)
        except CandleDataError as error:  # never for an ordered series; say so if it is
            log.error(
                "features %s %s: %s",
                self.symbol,
                self.timeframe,
                error,
                extra={"symbol": self.symbol, "timeframe": self.timeframe.name},
            )
            return None
        self.last_row = row
        return row


@dataclass(frozen=True, slots=True)
class ClosedRow:
    """A closed candle and the features it produced for one stream."""

    stream: FeatureStream
    candle: Candle
    row: tuple[float, ...]


class TimeframeStream:
    """One symbol's candles of one timeframe, and the feature states computed from them.

    `warming`: the exchange is being asked for the candles before the first complete one
    (`finish_warmup`); closed candles wait in `held` meanwhile, so the states take every
    candle once, in order."""

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe,
        history: int,
        on_built: Callable[[Candle], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        # 1 s candles are already closed candles of this timeframe: no resampling
        self.resampler = None if timeframe == ONE_SECOND else CandleResampler(timeframe, symbol)
        # each candle built here from live seconds (not the exchange's warm-up candles, not
        # the partial first one): the evidence recorder; 1 s candles are recorded upstream
        self.on_built = on_built if self.resampler is not None else None
        self.history: deque[Candle] = deque(maxlen=history)
        self.streams: dict[str, FeatureStream] = {}
        self.complete_from: int | None = None  # start of the first interval seen whole
        self.partial_skipped = 0
        self.warming = False
        self.held: list[Candle] = []

    def begin(self, first_second_ms: int, *, warm_up: bool) -> None:
        """The first 1 s candle arrives. The interval it falls in is partial unless it
        starts with this second: that candle would be wrong (too little volume, a late
        open), so it is left out rather than fed to the features."""
        floor = self.timeframe.floor_ms(first_second_ms)
        step = self.timeframe.milliseconds
        self.complete_from = floor if floor == first_second_ms else floor + step
        self.warming = warm_up

    def add_second(self, candle: Candle) -> list[ClosedRow]:
        if self.complete_from is None:
            self.begin(candle.start_ms, warm_up=False)
        closed = candle if self.resampler is None else self.resampler.add(candle)
        return [] if closed is None else self._apply(closed)

    def close_until(self, time_ms: int) -> list[ClosedRow]:
        if self.resampler is None:
            return []
        closed = self.resampler.close_until(time_ms)
        return [] if closed is None else self._apply(closed)

    def finish_warmup(self, earlier: list[Candle]) -> int:
        """Feed the exchange's candles before the first complete one, then the held ones,
        to every state (no decisions: they are history). Returns how many were taken."""
        first = self.complete_from
        wanted = [c for c in earlier if first is None or c.start_ms < first]
        before = sorted(wanted, key=lambda c: c.start_ms)[-(self.history.maxlen or 1) :]
        held, self.held, self.warming = self.held, [], False
        for candle in before:
            self._apply(candle, earlier=True)
        for candle in held:
            self._apply(candle)
        return len(before)

    def stream_for(self, spec: FeatureSpec) -> FeatureStream:
        """The feature state of `spec` on this timeframe, created and warmed up from the
        kept candles if it is new."""
        stream = self.streams.get(spec.content_hash)
        if stream is None:
            state = IncrementalFeatures(spec)
            stream = FeatureStream(self.symbol, self.timeframe, spec, state)
            for candle in self.history:
                stream.update(candle)
            self.streams[spec.content_hash] = stream
        return stream

    def _apply(self, candle: Candle, *, earlier: bool = False) -> list[ClosedRow]:
        if self.warming:
            self.held.append(candle)
            return []
        live_but_partial = self.complete_from is not None and candle.start_ms < self.complete_from
        if live_but_partial and not earlier:
            self.partial_skipped += 1
            return []
        self.history.append(candle)
        if self.on_built is not None and not earlier:
            self.on_built(candle)
        rows = []
        for stream in self.streams.values():
            row = stream.update(candle)
            if row is not None and stream.bots:
                rows.append(ClosedRow(stream, candle, row))
        return rows


class SymbolPipeline:
    """The timeframes and feature states of one symbol; bots join and leave by name."""

    def __init__(
        self,
        symbol: str,
        history: int,
        warm_up: Callable[[TimeframeStream], None] | None = None,
        on_built: Callable[[Candle], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.history = history
        self._warm_up = warm_up  # asks the exchange for a new timeframe's earlier candles
        self._on_built = on_built  # every timeframe candle built (the evidence recorder)
        self.timeframes: dict[str, TimeframeStream] = {}
        self.bots: set[str] = set()
        self.last_price: float | None = None
        self.seconds = 0  # 1 s candles received

    def join(self, bot: str, timeframe: str, spec: FeatureSpec) -> FeatureStream:
        """Make `bot` read (timeframe, spec), and nothing else. Joining before leaving the
        old stream keeps the timeframe's candles when only the spec changes (a model swap)."""
        frame = parse_timeframe(timeframe)
        stream = self.timeframes.get(frame.name)
        if stream is None:
            stream = self.timeframes[frame.name] = TimeframeStream(
                self.symbol, frame, self.history, self._on_built
            )
        features = stream.stream_for(spec)
        features.bots.add(bot)
        self.bots.add(bot)
        self._drop(bot, keep=features)
        return features

    def leave(self, bot: str) -> None:
        """Forget `bot` everywhere; states nobody reads any more are dropped."""
        self.bots.discard(bot)
        self._drop(bot, keep=None)

    def _drop(self, bot: str, keep: FeatureStream | None) -> None:
        for name, frame in list(self.timeframes.items()):
            for spec_hash, features in list(frame.streams.items()):
                if features is keep:
                    continue
                features.bots.discard(bot)
                if not features.bots:
                    del frame.streams[spec_hash]
            if not frame.streams:
                del self.timeframes[name]

    def on_second(self, candle: Candle) -> list[ClosedRow]:
        self.seconds += 1
        rows: list[ClosedRow] = []
        for frame in self.timeframes.values():
            if frame.complete_from is None:
                frame.begin(candle.start_ms, warm_up=self._warm_up is not None)
                if self._warm_up is not None:
                    self._warm_up(frame)
            rows += frame.add_second(candle)
        return rows

    def close_until(self, time_ms: int) -> list[ClosedRow]:
        rows: list[ClosedRow] = []
        for frame in self.timeframes.values():
            rows += frame.close_until(time_ms)
        return rows


class NoBackfill:
    """No REST side configured: gaps are reported unhealed, never silently."""

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe | str, start_ms: int, end_ms: int
    ) -> list[Candle]:
        raise BackfillError("no REST backfill configured (rest_url)")
