"""What a tick can trigger in a live book, summarised once per change of the book.

`PositionBook.on_tick` runs on every trade of the bot's symbol. Most trades trigger
nothing: no deadline has passed and the price is nowhere near a stop. `TickWatch` holds the
earliest deadline (a maker entry's expiry, a holding timeout) and the stop levels of the
book's positions, so the book can tell in two comparisons that a tick changes nothing,
and runs its full rules otherwise. It is rebuilt whenever the book's positions change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from tradepipe.domain import Side
from tradepipe.enums import PositionStatus
from tradepipe.orders.trailing import effective_stop
from tradepipe.orders.types import Position

__all__ = ["TickWatch"]


@dataclass(frozen=True, slots=True)
class TickWatch:
    earliest_ms: float  # no deadline before this time (-inf: always run the rules)
    highest_long_stop: float  # a price above it touches no long position's stop
    lowest_short_stop: float  # a price below it touches no short position's stop

    @classmethod
    def of(cls, positions: Iterable[Position]) -> TickWatch:
        earliest, long_stop, short_stop = math.inf, -math.inf, math.inf
        for position in positions:
            if position.status is PositionStatus.PENDING:
                deadline = position.entry.expires_at_ms
                if deadline is not None:
                    earliest = min(earliest, deadline)
                continue
            if position.pending_exit is not None:
                continue  # the book's rules pass over it too
            if position.expires_at_ms is None or position.stop_loss_price is None:
                return cls(-math.inf, math.inf, -math.inf)  # the rules say what is wrong
            earliest = min(earliest, position.expires_at_ms)
            stop, _ = effective_stop(position)
            if position.side is Side.BUY:
                long_stop = max(long_stop, stop)
            else:
                short_stop = min(short_stop, stop)
        return cls(earliest, long_stop, short_stop)

    def quiet(self, time_ms: int, price: float | None) -> bool:
        """True if a tick at `time_ms` (and `price`) certainly triggers nothing."""
        if time_ms >= self.earliest_ms:
            return False
        return price is None or self.highest_long_stop < price < self.lowest_short_stop
