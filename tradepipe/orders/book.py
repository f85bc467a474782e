"""One bot's positions: the order and position state machine that backtests and live share.

A `PositionBook` holds a bot's open positions, enforces its position limit, numbers its
positions (the sequence behind deterministic client order ids) and routes inputs to the
pure transitions. It has no clock and does no I/O: every input carries its time, every
call returns the events it caused, and the whole state is a plain dict (`to_dict`).

Two ways to drive it, chosen when the book is made:
- `simulated=True` (backtests, candle-identical paper trading): feed each closed candle
  to `on_candle` first, then let the strategy decide at that candle's `end_ms`
  (`submit_entry`, `close_position`); the fill model of `tradepipe.orders.rules` plays
  the venue.
- `simulated=False` (live): send each `OrderPlaced` to the broker and report what the
  venue says with `on_accepted`, `on_fill`, `on_cancelled` and `on_rejected`; call
  `on_tick` with the time (and a last price) so maker timeouts, holding timeouts and stops
  trigger, and `on_closed_candle` with each closed candle of the bot's timeframe so
  trailing stops ratchet as they do in a backtest. Stops are watched here; a venue may also
  hold one beside the take-profit (an OCO placed by its broker, see `venue_stop_order_id`):
  when that stop leg is reported (accepted or filled), the take-profit has expired with it
  and the stop becomes the position's stop-loss exit.
Closed positions leave the book; their `PositionClosed` event is the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tradepipe.botconfig import BotConfig
from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus
from tradepipe.orders import transitions
from tradepipe.orders.barriers import BarrierError, BarrierMove, move_barriers
from tradepipe.orders.events import (
    Anomaly,
    EntryRefused,
    Event,
    OrderAccepted,
    OrderPlaced,
    PositionPending,
)
from tradepipe.orders.evolve import evolve
from tradepipe.orders.rules import Bar, stop_touched
from tradepipe.orders.serialise import StateError
from tradepipe.orders.simulate import step_candle
from tradepipe.orders.trailing import effective_stop, ratchet
from tradepipe.orders.types import (
    EntryRequest,
    FeeSchedule,
    Liquidity,
    OrderState,
    Position,
    client_order_id,
    parse_client_order_id,
    venue_stop_order_id,
)

__all__ = ["PositionBook"]

STATE_VERSION = 1


class PositionBook:
    """The open positions of one bot on one symbol."""

    def __init__(
        self,
        bot: str,
        symbol: str,
        *,
        max_open_positions: int = 1,
        fees: FeeSchedule | None = None,
        slippage_bps: float = 0.0,
        simulated: bool = True,
        next_seq: int = 1,
    ) -> None:
        client_order_id(bot, max(next_seq, 0), OrderRole.ENTRY)  # refuse unusable names now
        if max_open_positions < 1:
            raise ValueError(f"max_open_positions must be >= 1, got {max_open_positions}")
        if not (math.isfinite(slippage_bps) and 0 <= slippage_bps < 10_000):
            raise ValueError(f"slippage_bps must be in [0, 10000): {slippage_bps}")
        self.bot = bot
        self.symbol = symbol
        self.max_open_positions = max_open_positions
        self.fees = fees or FeeSchedule()
        # market fills of the simulated venue (fill model rule 6); a real venue's are its own
        self.slippage_bps = slippage_bps
        self.simulated = simulated
        self.next_seq = next_seq
        self.last_candle_start_ms: int | None = None
        self._open: dict[int, Position] = {}

    @classmethod
    def for_bot(
        cls, bot: str, symbol: str, config: BotConfig, fees: FeeSchedule, **options: Any
    ) -> PositionBook:
        return cls(bot, symbol, max_open_positions=config.max_open_positions, fees=fees, **options)

    @property
    def positions(self) -> tuple[Position, ...]:
        """Open (pending and active) positions, oldest first."""
        return tuple(self._open[seq] for seq in sorted(self._open))

    def position(self, seq: int) -> Position | None:
        return self._open.get(seq)

    # -- decisions -------------------------------------------------------------------

    def submit_entry(self, request: EntryRequest, time_ms: int) -> tuple[Event, ...]:
        """Open a pending position and place its entry order, or refuse (`EntryRefused`)."""
        if len(self._open) >= self.max_open_positions:
            reason = f"max_open_positions reached ({len(self._open)}/{self.max_open_positions})"
            return (EntryRefused(bot=self.bot, time_ms=time_ms, reason=reason),)
        seq = self.next_seq
        self.next_seq += 1
        position = transitions.new_position(
            self.bot, seq, self.symbol, request, time_ms, simulated=self.simulated
        )
        self._open[seq] = position
        return (
            PositionPending(bot=self.bot, time_ms=time_ms, position=position),
            OrderPlaced(bot=self.bot, time_ms=time_ms, order=position.entry, position_seq=seq),
        )

    def close_position(
        self, seq: int, time_ms: int, reason: ExitReason = ExitReason.MANUAL
    ) -> tuple[Event, ...]:
        """Close a position by hand (or after an error): cancel a pending entry, or leave
        an active position at market (at the next candle's open when simulated)."""
        position = self._open.get(seq)
        if position is None:
            message = f"no open position {seq} to close"
            return (Anomaly(bot=self.bot, time_ms=time_ms, message=message),)
        if position.status is PositionStatus.PENDING:
            step = transitions.request_entry_cancel(
                position, reason, time_ms, simulated=self.simulated
            )
        elif position.pending_exit is None:
            step = transitions.begin_exit(position, reason, time_ms, simulated=self.simulated)
        else:
            return ()  # already leaving
        return self._keep(step)

    def move_barriers(
        self, seq: int, move: BarrierMove, time_ms: int, price: float | None = None
    ) -> tuple[Event, ...]:
        """An operator's new barriers for active position `seq`, checked against the
        market at `price` (BarrierError names what is refused; nothing changes then)."""
        position = self._open.get(seq)
        if position is None:
            raise BarrierError(f"bot {self.bot} has no open position {seq}")
        return self._keep(move_barriers(position, move, price, time_ms, simulated=self.simulated))

    # -- the simulated venue ---------------------------------------------------------

    def on_candle(self, candle: Bar) -> tuple[Event, ...]:
        """Apply one closed candle to every open position. A candle that is not newer
        than the last one applied is ignored, so replaying after a restart is harmless."""
        self._require(self.simulated, "on_candle drives a simulated book")
        if self.last_candle_start_ms is not None and candle.start_ms <= self.last_candle_start_ms:
            return ()
        self.last_candle_start_ms = candle.start_ms
        events: list[Event] = []
        for position in self.positions:
            events += self._keep(step_candle(position, candle, self.fees, self.slippage_bps))
        return tuple(events)

    # -- a real venue ----------------------------------------------------------------

    def on_tick(self, time_ms: int, price: float | None = None) -> tuple[Event, ...]:
        """Time (and optionally a last traded price) passed: trigger maker timeouts,
        stops and holding timeouts. Take-profits are resting orders the venue fills."""
        self._require(not self.simulated, "on_tick drives a live book")
        events: list[Event] = []
        for position in self.positions:
            if position.status is PositionStatus.PENDING:
                deadline = position.entry.expires_at_ms
                if deadline is not None and time_ms >= deadline:
                    events += self._keep(
                        transitions.request_entry_cancel(
                            position, ExitReason.MAKER_TIMEOUT, time_ms, simulated=False
                        )
                    )
                continue
            if position.pending_exit is not None:
                continue
            assert position.expires_at_ms is not None
            stop, stop_reason = effective_stop(position)
            if price is not None and stop_touched(position.side, price, price, stop):
                reason = stop_reason
            elif time_ms >= position.expires_at_ms:
                reason = ExitReason.TIMEOUT
            else:
                continue
            events += self._keep(transitions.begin_exit(position, reason, time_ms, simulated=False))
        return tuple(events)

    def on_closed_candle(self, candle: Bar) -> bool:
        """A candle of the bot's timeframe closed: ratchet trailing stops by it, by the
        rule backtests follow (`tradepipe.orders.trailing`). True if a stop moved."""
        self._require(not self.simulated, "on_closed_candle ratchets a live book")
        moved = False
        for position in self.positions:
            if position.pending_exit is None:
                ratcheted = ratchet(position, candle)
                if ratcheted is not position:
                    self._open[position.seq] = ratcheted
                    moved = True
        return moved

    def on_accepted(self, order_id: str, time_ms: int) -> tuple[Event, ...]:
        """The venue acknowledged an order (NEW -> OPEN)."""

        def accept(position: Position, order: OrderState) -> transitions.Step:
            if order.status is not OrderStatus.NEW:
                return position, []
            opened = evolve(order, status=OrderStatus.OPEN, updated_at_ms=time_ms)
            event = OrderAccepted(
                bot=self.bot, time_ms=time_ms, order=opened, position_seq=position.seq
            )
            return transitions.replace_order(position, opened), [event]

        taken = self._venue_stop(order_id, time_ms)
        return taken + self._report(order_id, time_ms, accept, late_is_anomaly=False)

    def on_fill(
        self,
        order_id: str,
        price: float,
        time_ms: int,
        *,
        quantity: float | None = None,
        fee: float | None = None,
        liquidity: Liquidity | None = None,
        complete: bool = True,
    ) -> tuple[Event, ...]:
        """The venue filled `quantity` (default: all that is left) of an order at `price`.

        `fee` is in quote currency (default: the fee schedule's rate for `liquidity`, which
        defaults to maker for limit orders and taker for market orders); `complete=False`
        marks a partial fill after which the order keeps working.
        """

        def fill(position: Position, order: OrderState) -> transitions.Step:
            if not order.is_working:
                message = f"fill for {order.status} order {order_id}"
                return position, [Anomaly(bot=self.bot, time_ms=time_ms, message=message)]
            size = quantity if quantity is not None else _remaining(order, price)
            taken = liquidity or (
                Liquidity.MAKER if order.order_type is OrderType.LIMIT else Liquidity.TAKER
            )
            cost = fee if fee is not None else self.fees.fee(price * size, taken)
            return transitions.apply_fill(
                position,
                order,
                price,
                size,
                cost,
                taken,
                time_ms,
                complete=complete,
                simulated=False,
            )

        taken = self._venue_stop(order_id, time_ms)
        return taken + self._report(order_id, time_ms, fill, late_is_anomaly=True)

    def on_cancelled(self, order_id: str, time_ms: int) -> tuple[Event, ...]:
        """The venue cancelled (or expired) an order."""

        def cancelled(position: Position, order: OrderState) -> transitions.Step:
            if not order.is_working:
                return position, []
            return transitions.cancel_confirmed(position, order, time_ms, simulated=False)

        return self._report(order_id, time_ms, cancelled, late_is_anomaly=False)

    def on_rejected(self, order_id: str, time_ms: int, message: str) -> tuple[Event, ...]:
        def reject(position: Position, order: OrderState) -> transitions.Step:
            if not order.is_working:
                return position, []
            return transitions.rejected(position, order, message, time_ms)

        return self._report(order_id, time_ms, reject, late_is_anomaly=False)

    def _venue_stop(self, order_id: str, time_ms: int) -> tuple[Event, ...]:
        """A report of the venue stop of an open position's take-profit that the position
        does not hold yet: it takes over the exit (`transitions.venue_stop_taken`)."""
        parsed = parse_client_order_id(order_id)
        if parsed is None or parsed[0] != self.bot or parsed[2] is not OrderRole.STOP_LOSS:
            return ()
        position = self._open.get(parsed[1])
        if position is None or position.order(order_id) is not None:
            return ()
        for order in position.exits:
            role = order.role
            if (
                role is OrderRole.TAKE_PROFIT
                and venue_stop_order_id(order.client_order_id) == order_id
            ):
                return self._keep(transitions.venue_stop_taken(position, order, order_id, time_ms))
        return ()

    # -- state -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "bot": self.bot,
            "symbol": self.symbol,
            "max_open_positions": self.max_open_positions,
            "fees": self.fees.to_dict(),
            "slippage_bps": self.slippage_bps,
            "simulated": self.simulated,
            "next_seq": self.next_seq,
            "last_candle_start_ms": self.last_candle_start_ms,
            "positions": [position.to_dict() for position in self.positions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PositionBook:
        """A book from `to_dict` output; `max_open_positions` and `fees` may then be
        changed (a reloaded config) without touching the open positions' barriers."""
        if data.get("version") != STATE_VERSION:
            raise StateError(f"position book state version {data.get('version')!r} unknown")
        try:
            book = cls(
                data["bot"],
                data["symbol"],
                max_open_positions=data["max_open_positions"],
                fees=FeeSchedule.from_dict(data["fees"]),
                slippage_bps=float(data.get("slippage_bps", 0.0)),  # saved before it existed
                simulated=data["simulated"],
                next_seq=data["next_seq"],
            )
            book.last_candle_start_ms = data["last_candle_start_ms"]
            positions = [Position.from_dict(item) for item in data["positions"]]
        except KeyError as missing:
            raise StateError(f"position book state lacks {missing}") from None
        for position in positions:
            if position.seq >= book.next_seq or not position.is_open:
                raise StateError(f"position {position.seq} does not fit the saved book")
            book._open[position.seq] = position
        return book

    # -- plumbing ----------------------------------------------------------------------

    def _keep(self, step: transitions.Step) -> tuple[Event, ...]:
        position, events = step
        if position.is_open:
            self._open[position.seq] = position
        else:
            self._open.pop(position.seq, None)
        return tuple(events)

    def _report(
        self,
        order_id: str,
        time_ms: int,
        apply: Callable[[Position, OrderState], transitions.Step],
        *,
        late_is_anomaly: bool,
    ) -> tuple[Event, ...]:
        self._require(not self.simulated, "venue reports drive a live book")
        parsed = parse_client_order_id(order_id)
        position = self._open.get(parsed[1]) if parsed and parsed[0] == self.bot else None
        order = position.order(order_id) if position else None
        if position is None or order is None:
            closed = parsed is not None and parsed[0] == self.bot and parsed[1] < self.next_seq
            if closed and not late_is_anomaly:
                return ()  # a late confirmation for a position that has finished
            message = f"report for unknown order {order_id!r}"
            return (
                Anomaly(bot=self.bot, time_ms=time_ms, message=message, client_order_id=order_id),
            )
        return self._keep(apply(position, order))

    @staticmethod
    def _require(condition: bool, message: str) -> None:
        if not condition:
            raise RuntimeError(message)


def _remaining(order: OrderState, price: float) -> float:
    if order.quantity is not None:
        return order.quantity - order.filled_quantity
    assert order.quote_quantity is not None  # a quote-sized market entry
    spent = order.filled_quantity * (order.average_price or 0.0)
    return (order.quote_quantity - spent) / price
