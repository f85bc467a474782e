"""Which trades of one symbol are believable, before any consumer sees them.

One hostile or corrupt trade must not steer the engine: a trade id far ahead used to become
the floor below which every later trade was a "duplicate" (candles stopped), a timestamp a
day ahead moved market time (candles stopped, timeouts fired at once), a price of 1e12
filled a bot. So each trade is checked against what the symbol said just before:

- dropped at once: a non-finite or non-positive price or quantity; a time more than
  `max_future_seconds` ahead of the local clock, or more than `max_backward_seconds`
  behind the latest trade; a quantity over `max_quantity_ratio` times the recent mean;
  an id already delivered (within the last `duplicate_window` ids: a duplicate) or older
  (out of order).
- held until the next trade of the symbol speaks for or against it: an id more than
  `max_id_jump` away from the last one (a gap to verify, never a new floor), a time more
  than `max_time_jump_seconds` after the latest trade, a price outside `price_band` of
  the previous one (and of the first one of the current millisecond, which the inline
  path compares with). The next trade confirms the held one when it is believable right after it
  (id, time and price close to the held trade's): both go out, in order. Otherwise the
  held trade is dropped and the next one is judged on its own. One held trade at a time;
  nothing else moves meanwhile, so market time and candles never see a suspect.

Accepted ids only grow (except after a confirmed jump), so the window of recent ids is a
range below the last id: detecting a duplicate costs nothing per trade. The router runs the
common case inline (the next id, inside the bands, same millisecond or a small step
forward; see `StreamRouter._deliver`); everything else comes here. Each suspect is counted
by its reason (`SuspectCounts`).

Limits, stated once: the first trade of a symbol has nothing to be compared with (only its
values and its time against the clock are checked); two forged trades in a row that agree
with each other confirm each other (the real stream then wins back the same way, after two
of its trades); a held trade of a quiet symbol waits for the symbol's next trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from live.feeds.protocol import Gap, SuspectCounts
from tradepipe.domain import Trade

__all__ = ["NO_NEXT_ID", "SanityConfig", "SuspectCounter", "TradeScreen"]

# `TradeScreen.next_id` when the inline path must not run (no trade yet, one held, no ids)
NO_NEXT_ID = -(2**63)
QUANTITY_MEAN_WEIGHT = 1 / 64  # of each new sample in the recent mean quantity


@dataclass(frozen=True, slots=True)
class SanityConfig:
    """Tolerances of the feed's trade checks (defaults suit Binance spot)."""

    max_future_seconds: float = 10.0
    max_backward_seconds: float = 1.0
    max_time_jump_seconds: float = 900.0
    max_id_jump: int = 1_000_000
    price_band: float = 0.25
    max_quantity_ratio: float = 1e5
    duplicate_window: int = 4096

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"feed sanity setting {item.name} must be a number > 0: {value!r}")
        if self.price_band >= 1:
            raise ValueError(f"feed sanity price_band must be below 1 (100 %): {self.price_band}")
        if self.max_quantity_ratio <= 1:
            raise ValueError("feed sanity max_quantity_ratio must be above 1")
        if self.duplicate_window >= self.max_id_jump:
            raise ValueError("feed sanity duplicate_window must be smaller than max_id_jump")


class SuspectCounter:
    """The mutable side of `SuspectCounts` (plain attributes, one per reason)."""

    __slots__ = (
        "backward_time",
        "bad_value",
        "confirmed",
        "future_time",
        "id_jump",
        "out_of_order",
        "price_band",
        "quantity",
        "rejected",
        "time_jump",
    )

    def __init__(self) -> None:
        self.bad_value = self.future_time = self.backward_time = self.quantity = 0
        self.out_of_order = self.id_jump = self.time_jump = self.price_band = 0
        self.confirmed = self.rejected = 0

    def count(self, reason: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)

    def snapshot(self) -> SuspectCounts:
        return SuspectCounts(**{name: getattr(self, name) for name in self.__slots__})


class TradeScreen:
    """One symbol's recent past and the trade held for confirmation. The router's inline
    path reads the bands and moves `next_id` (`last_id` is synced from it here)."""

    __slots__ = (
        "_backward_ms",
        "_config",
        "_counter",
        "_future_ns",
        "_jump_ms",
        "_price_high_factor",
        "_price_low_factor",
        "earliest_ms",
        "held",
        "held_reason",
        "last_id",
        "last_ms",
        "latest_ms",
        "next_id",
        "previous",
        "price_high",
        "price_low",
        "quantity_limit",
        "quantity_mean",
        "started",
        "symbol",
    )

    def __init__(self, symbol: str, config: SanityConfig, counter: SuspectCounter) -> None:
        self.symbol = symbol
        self._config = config
        self._counter = counter
        self._backward_ms = int(config.max_backward_seconds * 1000)
        self._jump_ms = int(config.max_time_jump_seconds * 1000)
        self._future_ns = int(config.max_future_seconds * 1e9)
        self._price_low_factor = 1 - config.price_band
        self._price_high_factor = 1 + config.price_band
        self.started = False
        self.held: Trade | None = None
        self.held_reason: str | None = None
        self.last_id: int | None = None
        self.next_id = NO_NEXT_ID
        self.last_ms = 0  # the latest trade time accepted
        self.earliest_ms = 0  # before this, a trade goes back in time
        self.latest_ms = 0  # beyond this, a trade is a time jump
        self.price_low = self.price_high = 0.0  # the band around the current ms's first price
        self.previous: Trade | None = None  # the last trade accepted
        self.quantity_mean = 0.0
        self.quantity_limit = math.inf

    def advance(self, trade: Trade, receive_ns: int) -> bool:
        """The inline path's step forward in time: False when `trade` is a time jump or
        in the future (then `screen` judges it); True: its time, price band and quantity
        mean are now the symbol's."""
        time_ms = trade.time_ms
        if not self.last_ms < time_ms <= self.latest_ms:
            return False
        if time_ms * 1_000_000 > receive_ns + self._future_ns:
            return False
        self._move_to(trade)
        return True

    def _move_to(self, trade: Trade) -> None:
        time_ms, price = trade.time_ms, trade.price
        self.last_ms = time_ms
        self.earliest_ms = time_ms - self._backward_ms
        self.latest_ms = time_ms + self._jump_ms
        self.price_low = price * self._price_low_factor
        self.price_high = price * self._price_high_factor
        mean = self.quantity_mean
        mean += (trade.quantity - mean) * QUANTITY_MEAN_WEIGHT
        self.quantity_mean = mean
        self.quantity_limit = mean * self._config.max_quantity_ratio

    # -- the slow path --------------------------------------------------------------------

    def screen(self, trade: Trade, receive_ns: int) -> list[Trade | Gap] | None:
        """What to deliver, in order, for `trade` (none, it, or a confirmed held trade and
        then it, with the Gap its ids leave before it); None when it is a duplicate (the
        router counts those)."""
        if self.next_id != NO_NEXT_ID:  # the inline path moves `next_id` only
            self.last_id = self.next_id - 1
        reason = self._unbelievable(trade, receive_ns)
        if reason is not None:
            self._counter.count(reason)
            return []
        held = self.held
        if held is None:
            return self._judge(trade)
        if trade == held:
            return None  # the held trade again (another trade under its id contradicts it)
        self.held = self.held_reason = None
        self.next_id = NO_NEXT_ID if self.last_id is None else self.last_id + 1
        if self._follows(held, trade):
            self._counter.confirmed += 1
            events = self._accept(held)
            judged = self._judge(trade)
            return events if judged is None else events + judged
        self._counter.rejected += 1
        return self._judge(trade)

    def _unbelievable(self, trade: Trade, receive_ns: int) -> str | None:
        """A reason to drop `trade` whatever came before it."""
        price, quantity = trade.price, trade.quantity
        if not (0.0 < price < math.inf and 0.0 < quantity < math.inf):
            return "bad_value"
        if trade.time_ms * 1_000_000 > receive_ns + self._future_ns:
            return "future_time"
        if self.started and quantity > self.quantity_limit:
            return "quantity"
        return None

    def _judge(self, trade: Trade) -> list[Trade | Gap] | None:
        if not self.started:
            return self._accept(trade)
        trade_id, last_id = trade.trade_id, self.last_id
        step = 1
        if trade_id is not None and last_id is not None:
            step = trade_id - last_id
            if -self._config.duplicate_window < step <= 0:
                return None
            if -self._config.max_id_jump <= step <= 0:
                self._counter.out_of_order += 1
                return []
        if trade.time_ms < self.earliest_ms:
            self._counter.backward_time += 1
            return []
        if abs(step) > self._config.max_id_jump:
            return self._hold(trade, "id_jump")
        if trade.time_ms > self.latest_ms:
            return self._hold(trade, "time_jump")
        if not (self.price_low <= trade.price <= self.price_high) and not self._near(
            self.previous, trade
        ):
            return self._hold(trade, "price_band")
        return self._accept(trade)

    def _hold(self, trade: Trade, reason: str) -> list[Trade | Gap]:
        self._counter.count(reason)
        self.held, self.held_reason = trade, reason
        self.next_id = NO_NEXT_ID  # every trade comes here until this one is settled
        return []

    def _follows(self, held: Trade, trade: Trade) -> bool:
        """Is `trade` believable right after `held`? Then it confirms it."""
        if held.trade_id is not None and trade.trade_id is not None:
            step = trade.trade_id - held.trade_id
            if not 0 < step <= self._config.max_id_jump:
                return False
        return (
            held.time_ms - self._backward_ms <= trade.time_ms <= held.time_ms + self._jump_ms
            and (self._near(held, trade))
        )

    def _near(self, reference: Trade | None, trade: Trade) -> bool:
        """Is `trade`'s price within the band around `reference`'s?"""
        if reference is None:
            return False
        price = reference.price
        return price * self._price_low_factor <= trade.price <= price * self._price_high_factor

    def _accept(self, trade: Trade) -> list[Trade | Gap]:
        events: list[Trade | Gap] = []
        trade_id, last_id = trade.trade_id, self.last_id
        if trade_id is not None and last_id is not None and trade_id > last_id + 1:
            events.append(Gap(self.symbol, self.last_ms, trade.time_ms, last_id, trade_id))
        if trade_id is not None:
            self.last_id = trade_id
        self.next_id = NO_NEXT_ID if trade_id is None else trade_id + 1
        if not self.started:
            self.quantity_mean = trade.quantity  # the first sample is the mean so far
            self.started = True
            self._move_to(trade)
        elif trade.time_ms > self.last_ms:
            self._move_to(trade)
        self.previous = trade
        events.append(trade)
        return events
