"""Trailing stops: a stop that follows the best price a position has seen, never back.

The one rule, for backtests, labels and live alike (a long; a short mirrors it):
- when the entry fills, the trail starts at entry * (1 - trailing_stop_pct / 100);
- after each closed candle the position was open through from its start (opened at or
  before the candle's start_ms), the trail moves up to high * (1 - trailing_stop_pct / 100)
  if that is higher. A candle's high ratchets the stop only once the candle has closed: the
  order of high and low inside it is unknown, so the stop a candle is checked against is
  the one from the candles before it (and an entry filled inside a candle, whose high may
  have come before the fill, does not ratchet on that candle, as fill model rule 5);
- the position's effective stop is the tighter of its stop-loss and its trail; when the
  trail is strictly tighter, touching it exits as `trailing_stop` (a market order, as the
  stop-loss, fill model rule 4b and 4d), else as `stop_loss`.

Since rounding is monotone, max over candles of trail(high) equals trail(max of highs):
the vectorised labels can take a running maximum of the highs and get bit-identical stops.
"""

from __future__ import annotations

from typing import Any

from tradepipe.enums import ExitReason, PositionStatus, Side
from tradepipe.orders.evolve import evolve
from tradepipe.orders.rules import Bar
from tradepipe.orders.types import Position

__all__ = ["effective_stop", "ratchet", "tighter_stop", "trail_price"]


def trail_price(side: Side, best_price: Any, trailing_stop_pct: float) -> Any:
    """The trailing stop behind `best_price` (a float or a numpy array)."""
    if side is Side.BUY:
        return best_price * (1.0 - trailing_stop_pct / 100.0)
    return best_price * (1.0 + trailing_stop_pct / 100.0)


def tighter_stop(side: Side, candidate: float, stop: float) -> bool:
    """Is `candidate` a tighter stop than `stop` (closer to the price, on the stop side)?"""
    return candidate > stop if side is Side.BUY else candidate < stop


def effective_stop(position: Position) -> tuple[float, ExitReason]:
    """The stop price an active position exits at, and the reason it would exit with."""
    stop, trail = position.stop_loss_price, position.trailing_stop_price
    assert stop is not None
    if trail is not None and tighter_stop(position.side, trail, stop):
        return trail, ExitReason.TRAILING_STOP
    return stop, ExitReason.STOP_LOSS


def ratchet(position: Position, bar: Bar) -> Position:
    """The position after `bar` closed: its trail moved to the bar's best price if tighter."""
    trail = position.trailing_stop_price
    pct = position.request.trailing_stop_pct
    opened = position.opened_at_ms
    if (
        trail is None
        or pct is None
        or opened is None
        or opened > bar.start_ms
        or position.status is not PositionStatus.ACTIVE
    ):
        return position
    best = bar.high if position.side is Side.BUY else bar.low
    candidate = float(trail_price(position.side, best, pct))
    if not tighter_stop(position.side, candidate, trail):
        return position
    return evolve(position, trailing_stop_price=candidate)
