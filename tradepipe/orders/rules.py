"""The candle fill model: the one set of rules every backtest, label and paper fill obeys.

Everything that decides *whether* and *at what price* an order fills against a closed
candle lives here, as small pure functions; the position state machine
(`tradepipe.orders.book`) and the triple-barrier labels (`tradepipe.labels`) both call
them, so research labels, backtests and simulated trading cannot drift apart.

A candle covers [start_ms, end_ms). Inside it we know only open, high, low and close, not
the order in which high and low were reached. The rules resolve that ignorance the same
way everywhere, and pessimistically where it matters:

1. **Decisions act on the next candle.** An order placed at time t (a strategy decides at
   a candle's close, t = that candle's end_ms) is only matched against candles whose
   start_ms >= t; a candle that began before the order existed is never used.
2. **Market orders** fill at the open of the first such candle, as taker, stamped with
   that candle's start_ms. A market *entry* is sized in quote currency: quantity =
   capital / fill price.
3. **Limit entries** (buy; a sell mirrors it) at price L, quantity = capital / L:
   - on the candle the order arrives on, if open <= L the order is marketable: it fills
     at the open, as taker, stamped start_ms;
   - otherwise, on that or any later candle, it fills when low <= L, at L, as maker (a
     resting bid is hit at its own price, even by a candle that opens below it); stamped
     start_ms if the open was already through L, else end_ms (we only know it happened
     by the close);
   - **maker timeout**: the order lives for `maker_timeout` after placement; only candles
     that *end* by that deadline can fill it (a candle straddling the deadline might have
     touched L after the cancel). The first candle ending after the deadline cancels the
     order instead, stamped at the deadline, and the position closes as `maker_timeout`
     without a trade. A timeout shorter than one candle therefore never fills.
4. **Barriers** of an active long (short mirrors): take-profit T = entry * (1 + tp% / 100),
   a resting limit sell (maker); stop-loss S = entry * (1 - sl% / 100), a stop that
   sells at market once traded through (taker); holding deadline X = opened_at + max
   holding. `resolve_bar` checks, in this order, and the first match is the exit:
   a. start_ms >= X (the data skipped past the deadline): timeout at the open, stamped
      start_ms;
   b. open <= S (gap through the stop): stop-loss **at the open**, stamped start_ms;
   c. open >= T (gap through the take-profit): take-profit at T, stamped start_ms;
   d. low <= S: stop-loss at S, stamped end_ms. **When take-profit and stop-loss are both
      touched inside one candle, stop-loss wins**: the path is unknown, so assume the worse;
   e. high >= T: take-profit at T, stamped end_ms;
   f. end_ms >= X: timeout **at the close** of the first candle ending at or after X,
      stamped end_ms (the close is the price at the deadline; no later candle is needed,
      so a label's horizon is exactly the candles up to X).
5. **The entry candle.** A fill at the open (market, marketable or gapped limit) precedes
   the whole candle, so all of rule 4 applies to it. A limit filled *inside* the candle
   (open > L >= low) may have seen the high before the fill, so take-profit cannot trigger
   on that candle; the stop can (prices fall through L before reaching anything below it,
   so a low at or below S came after the fill), and so can the timeout.
6. **Slippage.** A market order (a market entry, a stop-loss, a timeout or market exit)
   fills `slippage_bps` basis points worse than the price the rules above give it: a buy
   pays price * (1 + bps / 10 000), a sell gets price * (1 - bps / 10 000)
   (`market_fill_price`). Limit orders fill at their price or the open they met, never
   slipped. The paper broker applies the same rule to the trade a market order meets.

7. **Trailing stop** (when the position has one): the stop of rule 4 is the tighter of the
   stop-loss and the trail, which moves with the best price of the candles closed since
   the entry (`tradepipe.orders.trailing`); an exit at the trail is `trailing_stop`.
8. **Strategy exit**: a strategy's `Exit`, decided at a candle's close, leaves at market
   by rule 2 (the next candle's open, taker, slipped by rule 6) as `strategy`; it acts
   before anything else that candle could do (it was sent first).

Live trading uses the same predicates on real prices (`stop_touched` on a last price) and
real fills; there the venue, not this model, decides fill prices.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from tradepipe.enums import ExitReason, Side
from tradepipe.orders.types import Liquidity

__all__ = [
    "Bar",
    "EntryFill",
    "ExitFill",
    "barrier_prices",
    "limit_entry_fill",
    "market_fill_price",
    "resolve_bar",
    "resolve_candle",
    "stop_touched",
    "take_profit_touched",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
PriceLike = TypeVar("PriceLike", float, FloatArray)


class Bar(Protocol):
    """What the rules read from a candle; `tradepipe.domain.Candle` is one."""

    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...


class ExitFill(NamedTuple):
    """How an active position leaves on a candle."""

    reason: ExitReason
    price: float
    time_ms: int


class EntryFill(NamedTuple):
    """How a limit entry fills on a candle; `at_open` fills precede the whole candle."""

    price: float
    at_open: bool
    liquidity: Liquidity


def barrier_prices(
    side: Side, entry_price: PriceLike, take_profit_pct: float, stop_loss_pct: float
) -> tuple[PriceLike, PriceLike]:
    """(take-profit price, stop-loss price) for a position entered at `entry_price`.

    Works on floats and on numpy arrays with the same IEEE operations in the same order, so
    vectorised labels and the state machine get bit-identical barriers.
    """
    if side is Side.BUY:
        return (
            entry_price * (1.0 + take_profit_pct / 100.0),
            entry_price * (1.0 - stop_loss_pct / 100.0),
        )
    return (
        entry_price * (1.0 - take_profit_pct / 100.0),
        entry_price * (1.0 + stop_loss_pct / 100.0),
    )


@overload
def stop_touched(side: Side, low: float, high: float, stop_price: float) -> bool: ...
@overload
def stop_touched(
    side: Side, low: FloatArray, high: FloatArray, stop_price: FloatArray | float
) -> BoolArray: ...
def stop_touched(side: Side, low: Any, high: Any, stop_price: Any) -> Any:
    """Did prices in [low, high] trade at or through the stop? (Scalars or arrays.)"""
    return low <= stop_price if side is Side.BUY else high >= stop_price


@overload
def take_profit_touched(side: Side, low: float, high: float, take_profit_price: float) -> bool: ...
@overload
def take_profit_touched(
    side: Side, low: FloatArray, high: FloatArray, take_profit_price: FloatArray | float
) -> BoolArray: ...
def take_profit_touched(side: Side, low: Any, high: Any, take_profit_price: Any) -> Any:
    """Did prices in [low, high] reach the take-profit? (Scalars or arrays.)"""
    return high >= take_profit_price if side is Side.BUY else low <= take_profit_price


def market_fill_price(side: Side, price: float, slippage_bps: float) -> float:
    """Rule 6: what a market order of `side` pays (a buy) or gets (a sell) when it meets
    `price`: moved `slippage_bps` basis points against it."""
    move = slippage_bps / 10_000
    return price * (1.0 + move) if side is Side.BUY else price * (1.0 - move)


def _entry_reached(side: Side, low: float, high: float, limit_price: float) -> bool:
    """A limit entry trades when prices come to it: down to a bid, up to an offer."""
    return low <= limit_price if side is Side.BUY else high >= limit_price


def limit_entry_fill(
    side: Side, limit_price: float, bar: Bar, *, resting: bool
) -> EntryFill | None:
    """Rule 3: does a limit entry fill on `bar`, and how? `resting` is False on the candle
    the order arrives on (where a limit already through the open is marketable)."""
    opens_through = _entry_reached(side, bar.open, bar.open, limit_price)
    if opens_through and not resting:
        return EntryFill(bar.open, True, Liquidity.TAKER)
    if _entry_reached(side, bar.low, bar.high, limit_price):
        return EntryFill(limit_price, opens_through, Liquidity.MAKER)
    return None


def resolve_bar(
    side: Side,
    take_profit_price: float,
    stop_loss_price: float,
    expires_at_ms: int,
    open_price: float,
    high: float,
    low: float,
    close: float,
    start_ms: int,
    end_ms: int,
    take_profit_eligible: bool = True,
    stop_reason: ExitReason = ExitReason.STOP_LOSS,
) -> ExitFill | None:
    """Rule 4: the exit of an active position on one candle, or None if it stays open.

    Plain scalars in, so the labels can call it once per row without building objects;
    `resolve_candle` is the same call for anything shaped like a candle. `stop_loss_price`
    is the effective stop; `stop_reason` names it (`trailing_stop` when the trail is the
    tighter one: `tradepipe.orders.trailing`).
    """
    if start_ms >= expires_at_ms:
        return ExitFill(ExitReason.TIMEOUT, open_price, start_ms)
    if stop_touched(side, open_price, open_price, stop_loss_price):
        return ExitFill(stop_reason, open_price, start_ms)
    if take_profit_eligible and take_profit_touched(
        side, open_price, open_price, take_profit_price
    ):
        return ExitFill(ExitReason.TAKE_PROFIT, take_profit_price, start_ms)
    if stop_touched(side, low, high, stop_loss_price):
        return ExitFill(stop_reason, stop_loss_price, end_ms)
    if take_profit_eligible and take_profit_touched(side, low, high, take_profit_price):
        return ExitFill(ExitReason.TAKE_PROFIT, take_profit_price, end_ms)
    if end_ms >= expires_at_ms:
        return ExitFill(ExitReason.TIMEOUT, close, end_ms)
    return None


def resolve_candle(
    side: Side,
    take_profit_price: float,
    stop_loss_price: float,
    expires_at_ms: int,
    bar: Bar,
    *,
    take_profit_eligible: bool = True,
    stop_reason: ExitReason = ExitReason.STOP_LOSS,
) -> ExitFill | None:
    """`resolve_bar` for a candle object."""
    return resolve_bar(
        side,
        take_profit_price,
        stop_loss_price,
        expires_at_ms,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.start_ms,
        bar.end_ms,
        take_profit_eligible,
        stop_reason,
    )
