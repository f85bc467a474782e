"""Live positions against backtest positions: matched by entry candle, each price
difference attributed to a cause.

A position's entry candle is the candle whose close decided the entry (the latest entry
decision taken at or before the position's first market time: its entry fill, else its
cancel). Each matched pair compares the exit reason and the entry and exit prices; a price
that differs gets one cause, tried in this order:

- `fill model`: the two orders were of different kinds (a limit against a market order),
  so different rules priced them;
- `entry price`: an exit at the position's own barrier (take-profit, stop-loss), which lies
  at the same distance from an entry price that differed;
- `latency`: the live fill came on a later trade, after the end of the candle whose price
  the backtest used;
- `slippage`: inside the candle the backtest used, at another price than the candle's
  (the paper broker fills at the first trade after the order arrives, moved by its
  slippage): stated in basis points.

Unmatched positions are listed with the cause found in the decisions on their candle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from research.backtest.records import iso_utc
from research.review.compare import DecisionAnswer, Divergence

__all__ = [
    "PRICE_TOLERANCE",
    "PositionMatch",
    "ReviewedPosition",
    "attribute_price",
    "entry_candle",
    "match_positions",
]

PRICE_TOLERANCE = 1e-9  # relative: prices equal to the ninth digit are the same price


@dataclass(frozen=True, slots=True)
class ReviewedPosition:
    """One position as either side saw it, in market milliseconds.

    `*_window` is the candle [start, end) whose price the backtest used for that fill
    (None for live positions); `take_profit_price`/`stop_loss_price` are its barriers."""

    entry_candle_ms: int
    entry_type: str  # market or limit
    entry_price: float | None  # None: the entry never filled
    entry_time_ms: int | None
    exit_reason: str | None  # None: still open
    exit_price: float | None
    exit_time_ms: int | None
    exit_type: str | None = None
    take_profit_price: float | None = None
    stop_loss_price: float | None = None
    entry_window: tuple[int, int] | None = None
    exit_window: tuple[int, int] | None = None
    label: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "entry_candle": iso_utc(self.entry_candle_ms),
            "entry_type": self.entry_type,
            "entry_price": self.entry_price,
            "entry_time": _time(self.entry_time_ms),
            "exit_reason": self.exit_reason,
            "exit_price": self.exit_price,
            "exit_time": _time(self.exit_time_ms),
        }


@dataclass(frozen=True, slots=True)
class PositionMatch:
    live: ReviewedPosition
    backtest: ReviewedPosition
    divergences: tuple[Divergence, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "entry_candle": iso_utc(self.live.entry_candle_ms),
            "live": self.live.to_dict(),
            "backtest": self.backtest.to_dict(),
            "divergences": [d.to_dict() for d in self.divergences],
        }


def _time(time_ms: int | None) -> str | None:
    return None if time_ms is None else iso_utc(time_ms)


def entry_candle(first_time_ms: int, entry_decisions: Sequence[tuple[int, int]]) -> int | None:
    """The candle start of the latest (decided_ms, candle_start_ms) entry decision taken
    at or before `first_time_ms`; None if there is none."""
    found = None
    for decided_ms, candle_ms in entry_decisions:
        if decided_ms <= first_time_ms:
            found = candle_ms
    return found


def same_price(a: float, b: float) -> bool:
    return abs(a - b) <= PRICE_TOLERANCE * max(abs(a), abs(b), 1e-300)


def attribute_price(
    *,
    live_price: float,
    live_time_ms: int,
    live_type: str | None,
    backtest_price: float,
    backtest_type: str | None,
    backtest_window: tuple[int, int] | None,
    at_barrier: bool = False,
) -> str | None:
    """The cause of a price difference (None: the prices are the same)."""
    if same_price(live_price, backtest_price):
        return None
    if live_type is not None and backtest_type is not None and live_type != backtest_type:
        return f"fill model: a {live_type} order live, a {backtest_type} order in the backtest"
    if at_barrier:  # the whole difference is the barrier's: its timing changes nothing
        return "entry price: the exit is at the position's barrier, set from another entry"
    if backtest_window is not None and live_time_ms >= backtest_window[1]:
        late = live_time_ms - backtest_window[1]
        return (
            f"latency: filled live on a later trade, {late} ms after the end of the candle "
            f"the backtest used ({iso_utc(backtest_window[0])})"
        )
    bps = (live_price - backtest_price) / backtest_price * 10_000
    return f"slippage: {bps:+.2f} bps from the candle price the backtest used ({backtest_price!r})"


def _at_barrier(position: ReviewedPosition) -> bool:
    barrier = {
        "take_profit": position.take_profit_price,
        "stop_loss": position.stop_loss_price,
    }.get(position.exit_reason or "")
    return (
        barrier is not None
        and position.exit_price is not None
        and same_price(barrier, position.exit_price)
    )


def compare_pair(live: ReviewedPosition, backtest: ReviewedPosition) -> tuple[Divergence, ...]:
    """The differences of one matched pair, each with its cause."""
    found = [_entry_divergence(live, backtest)]
    if live.exit_reason != backtest.exit_reason:
        found.append(_exit_reason_divergence(live, backtest))
    else:
        found.append(_exit_price_divergence(live, backtest))
    return tuple(divergence for divergence in found if divergence is not None)


def _entry_divergence(live: ReviewedPosition, backtest: ReviewedPosition) -> Divergence | None:
    """Entries at other prices, or filled on one side only."""
    live_entry, backtest_entry = _entry_fill(live), _entry_fill(backtest)
    if live_entry is not None and backtest_entry is not None:
        detail = f"live {live.entry_price!r} backtest {backtest.entry_price!r}"
        return _price_divergence("entry_price", detail, live_entry, backtest_entry)
    if (live.entry_price is None) == (backtest.entry_price is None):
        return None
    filled, waiting = (live, backtest) if live.entry_price is not None else (backtest, live)
    side = "live" if filled is live else "backtest"
    return Divergence(
        "entry_fill",
        iso_utc(live.entry_candle_ms),
        f"the entry filled only in the {side}",
        "latency: the entry was still waiting for a trade when the range ended"
        if waiting.exit_reason is None
        else "fill model: the limit was traded through on one side only",
    )


def _exit_reason_divergence(live: ReviewedPosition, backtest: ReviewedPosition) -> Divergence:
    """The two sides left the position for different reasons."""
    when = live.exit_time_ms or backtest.exit_time_ms or live.entry_candle_ms
    entries_differ = (
        live.entry_price is not None
        and backtest.entry_price is not None
        and not same_price(live.entry_price, backtest.entry_price)
    )
    if live.exit_reason is None or backtest.exit_reason is None:
        cause = "latency: still open at the end of the range on one side"
    elif entries_differ:
        cause = (
            "entry price: the barriers were set from another entry price (see "
            "entry_price), so the market reached another one first"
        )
    else:
        cause = (
            "fill model: live exits on trades in the order they came, the backtest on "
            "the candle's open, high, low and close (stop-loss first when both touched)"
        )
    return Divergence(
        "exit_reason",
        iso_utc(when),
        f"live {live.exit_reason} backtest {backtest.exit_reason}",
        cause,
    )


def _exit_price_divergence(live: ReviewedPosition, backtest: ReviewedPosition) -> Divergence | None:
    """The same exit at other prices."""
    live_exit, backtest_exit = _exit_fill(live), _exit_fill(backtest)
    if live_exit is None or backtest_exit is None:
        return None
    detail = f"{live.exit_reason}: live {live.exit_price!r} backtest {backtest.exit_price!r}"
    at_barrier = _at_barrier(live) and _at_barrier(backtest)
    return _price_divergence("exit_price", detail, live_exit, backtest_exit, at_barrier)


@dataclass(frozen=True)
class _Fill:
    """One side's entry or exit: its price, when, by which order type, in which candle."""

    price: float
    time_ms: int | None
    order_type: str | None
    window: tuple[int, int] | None


def _entry_fill(position: ReviewedPosition) -> _Fill | None:
    if position.entry_price is None:
        return None
    return _Fill(
        position.entry_price, position.entry_time_ms, position.entry_type, position.entry_window
    )


def _exit_fill(position: ReviewedPosition) -> _Fill | None:
    if position.exit_price is None:
        return None
    return _Fill(
        position.exit_price, position.exit_time_ms, position.exit_type, position.exit_window
    )


def _price_divergence(
    kind: str, detail: str, live: _Fill, backtest: _Fill, at_barrier: bool = False
) -> Divergence | None:
    """A divergence of `kind` when the live and backtest prices differ, with its cause."""
    assert live.time_ms is not None  # a filled live order has its time
    cause = attribute_price(
        live_price=live.price,
        live_time_ms=live.time_ms,
        live_type=live.order_type,
        backtest_price=backtest.price,
        backtest_type=backtest.order_type,
        backtest_window=backtest.window,
        at_barrier=at_barrier,
    )
    return None if cause is None else Divergence(kind, iso_utc(live.time_ms), detail, cause)


def match_positions(
    live: Sequence[ReviewedPosition],
    backtest: Sequence[ReviewedPosition],
    *,
    live_decisions: Mapping[int, tuple[DecisionAnswer, str | None]],
    backtest_decisions: Mapping[int, DecisionAnswer],
) -> tuple[tuple[PositionMatch, ...], tuple[Divergence, ...]]:
    """Pairs by entry candle, and one divergence per unmatched position with its cause.

    `live_decisions` maps a candle to the engine's answer and what became of the entry
    (placed, blocked, refused, invalid)."""
    theirs = {position.entry_candle_ms: position for position in backtest}
    matches = []
    unmatched = []
    for position in live:
        other = theirs.pop(position.entry_candle_ms, None)
        if other is None:
            answer = backtest_decisions.get(position.entry_candle_ms)
            if answer is None:
                cause = "the backtest took no decision on its entry candle"
            elif answer.kind != "enter":
                cause = "the decisions differ on its entry candle (see the decision divergences)"
            else:
                cause = "the backtest entered too but held no slot (an earlier position differs)"
            unmatched.append(
                Divergence(
                    "position_live_only",
                    iso_utc(position.entry_candle_ms),
                    f"live position {position.label} has no backtest position",
                    cause,
                )
            )
        else:
            matches.append(PositionMatch(position, other, compare_pair(position, other)))
    for position in theirs.values():
        recorded = live_decisions.get(position.entry_candle_ms)
        if recorded is None:
            cause = "the engine took no decision on its entry candle"
        elif recorded[0].kind != "enter":
            cause = "the decisions differ on its entry candle (see the decision divergences)"
        elif recorded[1] != "placed":
            cause = f"the engine did not place the entry ({recorded[1]})"
        else:
            cause = "the engine placed the entry but has no position for it in the database"
        unmatched.append(
            Divergence(
                "position_backtest_only",
                iso_utc(position.entry_candle_ms),
                "backtest position with no live position",
                cause,
            )
        )
    return tuple(matches), tuple(sorted(unmatched, key=lambda d: d.time))


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
