"""The backtrader reference: the same strategy decisions, executed by backtrader.

`run_backtrader` has `run_backtest`'s signature and result. backtrader's Cerebro drives the
clock and its data feed the bars; the strategy is asked at each bar's close through the
same `Decider` as the fast engine, and its entries become backtrader orders that
backtrader's broker (`FillModelBroker`, matching by our fill model) executes. The kernel's
PositionBook is not used here: every price, quantity, fee and time in the result comes
from backtrader's executed orders, so a trade list identical to the fast engine's is
evidence that the book implements the fill model, not a tautology.

How a position maps onto backtrader:
- market entry: decided at bar i's close, submitted in `next_open` of bar i+1 (Cerebro's
  cheat-on-open, the one moment the open is known before the broker runs) as a Market buy
  of capital / open, which the broker fills at that open;
- limit entry: a Limit buy of capital / L submitted at bar i's close with `valid` = the
  maker-order deadline (backtrader expires it on the first bar ending after it);
- exits: the moment the entry fills (the broker's `on_execution` hook, in the middle of
  the bar) a one-cancels-others group is submitted for the filled size: a Stop sell at the
  stop-loss, a Limit sell at the take-profit and a Close sell carrying the holding deadline
  (barrier prices from the actual fill price, as the kernel computes them);
- trailing stop: the Stop sell is placed at the tighter of the stop-loss and the trail;
  at each bar's close the adapter ratchets the trail by the bar's high (for a position open
  from the bar's start, as `tradepipe.orders.trailing` states) and moves the Stop's price
  (`info.stop_price`, what the broker matches by) there;
- a strategy's `Exit` at a bar's close cancels the position's stop (its OCO group goes
  with it) and submits a Market sell, which the broker fills at the next bar's open; a
  pending limit entry it names is cancelled instead;
- fees: the broker's commission info charges maker or taker by how each fill traded;
- one data feed (of the same bars) per position slot (max_open_positions): backtrader nets
  all orders on a feed into one position, and with overlapping positions the float
  remainder of q1 + q2 - q1 can make the last exit of q2 "reverse" the net position by a
  hair, which backtrader books as a close plus an open with separately computed
  commissions (one unit in the last place off). A slot's feed holds one position at a
  time, 0 -> q -> 0, exactly.
The broker is given cash it never runs out of, as the fill model never refuses an entry
for want of cash (a bot commits its config's capital per trade); equity and metrics are
computed from backtrader's fills by the same code as the fast engine's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest._backtrader import bt
from research.backtest.backtrader_broker import AT_OPEN, FillModelBroker
from research.backtest.backtrader_exits import ratchet_trailing_stops, strategy_exit
from research.backtest.decisions import Decider
from research.backtest.engine import BACKTEST_BOT, DEFAULT_FEES, starting_capital
from research.backtest.errors import BacktestError
from research.backtest.history import History, prepare_history
from research.backtest.metrics import build_result
from research.backtest.records import BacktestResult, Fill, TradeRecord, UnfilledEntry
from tradepipe.botconfig import BotConfig
from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus, Side
from tradepipe.features import FeatureSpec
from tradepipe.orders import (
    EntryRequest,
    FeeSchedule,
    OrderState,
    Position,
    barrier_prices,
    client_order_id,
)
from tradepipe.orders.trailing import tighter_stop, trail_price
from tradepipe.strategy import Exit, Strategy
from tradepipe.timeframes import Timeframe

__all__ = ["run_backtrader"]

UNLIMITED_CASH = 1e18
_EXIT_ROLES = {
    bt.Order.Stop: OrderRole.STOP_LOSS,
    bt.Order.Limit: OrderRole.TAKE_PROFIT,
    bt.Order.Close: OrderRole.TIMEOUT_EXIT,
    bt.Order.Market: OrderRole.MARKET_EXIT,  # a strategy's Exit
}
_EXIT_REASONS = {
    bt.Order.Limit: ExitReason.TAKE_PROFIT,
    bt.Order.Close: ExitReason.TIMEOUT,
    bt.Order.Market: ExitReason.STRATEGY,
}  # a Stop's reason is its slot's: stop_loss, or trailing_stop when the trail is tighter


def run_backtrader(
    candles: pd.DataFrame,
    strategy: Strategy[Any],
    config: BotConfig,
    *,
    symbol: str = "",
    timeframe: str | Timeframe,
    features: pd.DataFrame | None = None,
    feature_spec: FeatureSpec | None = None,
    probabilities: npt.ArrayLike | None = None,
    fees: FeeSchedule = DEFAULT_FEES,
    slippage_bps: float = 0.0,
    strategy_hash: str = "",
    model_version: str | None = None,
    initial_capital: float | None = None,
) -> BacktestResult:
    """`run_backtest`, executed by backtrader (slow; the reference the fast engine meets).
    The reference models fills without slippage (rule 6): parity holds at slippage 0."""
    if slippage_bps != 0:
        raise BacktestError(
            f"the backtrader reference models no slippage, got slippage_bps={slippage_bps}: "
            "use the fast engine, or 0"
        )
    capital = starting_capital(config, initial_capital)
    history = prepare_history(
        candles,
        strategy,
        symbol=symbol,
        timeframe=timeframe,
        features=features,
        feature_spec=feature_spec,
        probabilities=probabilities,
    )
    decider = Decider(
        strategy, history, config, strategy_hash=strategy_hash, model_version=model_version
    )
    book = _Book(history, decider)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, preload=True, runonce=True)
    frame = _feed_frame(history)
    for _ in range(config.max_open_positions):
        cerebro.adddata(_CandleFeed(dataname=frame))
    broker = FillModelBroker(fees)
    broker.setcash(UNLIMITED_CASH)
    # accept orders at once, without a cash check: the exits placed while a bar is being
    # matched must work on that very bar
    broker.set_checksubmit(False)
    cerebro.setbroker(broker)
    cerebro.addstrategy(_AdapterStrategy, book=book)
    cerebro.run()
    open_positions = tuple(book.snapshot(slot) for slot in book.slots.values())
    return build_result(history, book.fills, book.trades, book.unfilled, open_positions, capital)


class _CandleFeed(bt.feeds.PandasData):  # type: ignore[misc]
    """OHLCV bars stamped by their end, with the exact candle times and our row index."""

    lines = ("start_ms", "end_ms", "row")
    params = (("openinterest", None), ("start_ms", -1), ("end_ms", -1), ("row", -1))


def _feed_frame(history: History) -> pd.DataFrame:
    index = pd.to_datetime(history.end_ms, unit="ms")  # naive UTC, as backtrader expects
    return pd.DataFrame(
        {
            "open": history.open,
            "high": history.high,
            "low": history.low,
            "close": history.close,
            "volume": history.volume,
            "start_ms": history.start_ms.astype(np.float64),
            "end_ms": history.end_ms.astype(np.float64),
            "row": np.arange(len(history), dtype=np.float64),
        },
        index=index,
    )


@dataclass(eq=False)
class _Slot:
    """One position as backtrader's orders make it."""

    seq: int
    feed: int  # the data feed (position slot) its orders trade on
    request: EntryRequest
    placed_at_ms: int
    entry_order: Any = None  # None: a market entry waiting for the next open
    entry_price: float | None = None
    quantity: float = 0.0
    entry_fee: float = 0.0
    opened_at_ms: int | None = None
    take_profit: float | None = None
    stop_loss: float | None = None
    expires_at_ms: int | None = None
    trailing_stop: float | None = None
    stop_order: Any = None
    leaving: bool = False  # a strategy's Exit is on its way

    @property
    def stop_reason(self) -> ExitReason:
        trail, stop = self.trailing_stop, self.stop_loss
        assert stop is not None
        tighter = trail is not None and tighter_stop(self.request.side, trail, stop)
        return ExitReason.TRAILING_STOP if tighter else ExitReason.STOP_LOSS


class _Book:
    """The adapter's positions: decisions in, backtrader orders out, records of fills."""

    def __init__(self, history: History, decider: Decider) -> None:
        self.history = history
        self.decider = decider
        self.config = decider.config
        self.slots: dict[int, _Slot] = {}
        self.fills: list[Fill] = []
        self.trades: list[TradeRecord] = []
        self.unfilled: list[UnfilledEntry] = []
        self.strategy: Any = None  # the running _AdapterStrategy: places the orders
        self._next_seq = 1
        self._positions: tuple[Position, ...] | None = ()

    # -- the bar's two moments ------------------------------------------------------------

    def at_open(self, row: int, open_price: float) -> None:
        for slot in self.slots.values():
            if slot.entry_order is None:
                size = slot.request.capital / open_price  # as the kernel sizes a market entry
                slot.entry_order = self.strategy.buy(
                    data=self.strategy.datas[slot.feed],
                    size=size,
                    exectype=bt.Order.Market,
                    tradeid=slot.seq,
                )

    def at_close(self, row: int) -> None:
        ratchet_trailing_stops(self, row)
        if not self.history.ready[row]:
            return
        if self._positions is None:
            self._positions = tuple(self.snapshot(slot) for slot in self.slots.values())
        decision = self.decider.decide(row, self._positions)
        if decision is None:
            return
        if isinstance(decision, Exit):
            for seq in self.decider.exit_targets(decision, row, self._positions):
                strategy_exit(self, self.slots[seq], row)
            return
        request = self.decider.request(decision, row)
        if len(self.slots) >= self.config.max_open_positions:
            return  # refused, as the kernel's book refuses it
        placed_at = int(self.history.end_ms[row])
        feed = min(
            set(range(self.config.max_open_positions)) - {s.feed for s in self.slots.values()}
        )
        slot = _Slot(self._next_seq, feed, request, placed_at)
        self._next_seq += 1
        self.slots[slot.seq] = slot
        self._positions = None
        if request.order_type is OrderType.LIMIT:
            assert request.limit_price is not None and request.maker_timeout_ms is not None
            deadline = _naive_utc(placed_at + request.maker_timeout_ms)
            slot.entry_order = self.strategy.buy(
                data=self.strategy.datas[slot.feed],
                size=request.capital / request.limit_price,  # as the kernel sizes a limit
                price=request.limit_price,
                exectype=bt.Order.Limit,
                valid=deadline,
                tradeid=slot.seq,
            )

    def invalidate(self) -> None:
        """The strategy's view of the positions is stale: rebuild it at the next close."""
        self._positions = None

    # -- what backtrader reports --------------------------------------------------------------

    def on_execution(self, order: Any) -> None:
        """A completed order, reported by the broker while it matches the bar."""
        slot = self.slots[order.tradeid]
        row = order.info.row
        # the execution itself, not `executed.price`: backtrader re-derives that as an
        # average, (0 + size * price) / size, which can be off by one unit in the last place
        fill = order.executed.exbits[-1]
        price, size, fee = fill.price, abs(fill.size), fill.comm
        stamp = int(
            self.history.start_ms[row]
            if order.info.fill_at == AT_OPEN
            else self.history.end_ms[row]
        )
        is_entry = order.ref == slot.entry_order.ref
        role = OrderRole.ENTRY if is_entry else _EXIT_ROLES[order.exectype]
        self.fills.append(Fill(row, stamp, role.value, order.isbuy(), price, size, fee))
        self._positions = None
        if is_entry:
            self._activate(slot, price, size, fee, stamp)
            return
        assert slot.entry_price is not None and slot.opened_at_ms is not None
        del self.slots[slot.seq]
        move = (
            price - slot.entry_price if slot.request.side is Side.BUY else slot.entry_price - price
        )
        self.trades.append(
            TradeRecord(
                entry_time_ms=slot.opened_at_ms,
                exit_time_ms=stamp,
                side=slot.request.side.value,
                entry_price=slot.entry_price,
                exit_price=price,
                quantity=size,
                exit_reason=(
                    slot.stop_reason
                    if order.exectype == bt.Order.Stop
                    else _EXIT_REASONS[order.exectype]
                ).value,
                pnl=size * move - (slot.entry_fee + fee),
                fees=slot.entry_fee + fee,
            )
        )

    def on_expired(self, order: Any) -> None:
        """backtrader expired a limit entry: its maker-order timeout."""
        slot = self.slots.pop(order.tradeid)
        request = slot.request
        assert request.limit_price is not None and request.maker_timeout_ms is not None
        self._positions = None
        self.unfilled.append(
            UnfilledEntry(
                placed_at_ms=slot.placed_at_ms,
                cancelled_at_ms=slot.placed_at_ms + request.maker_timeout_ms,
                limit_price=request.limit_price,
                reason=ExitReason.MAKER_TIMEOUT.value,
            )
        )

    def _activate(self, slot: _Slot, price: float, size: float, fee: float, stamp: int) -> None:
        request = slot.request
        take_profit, stop_loss = barrier_prices(
            request.side, price, request.take_profit_pct, request.stop_loss_pct
        )
        slot.entry_price, slot.quantity, slot.entry_fee = price, size, fee
        slot.opened_at_ms, slot.take_profit, slot.stop_loss = stamp, take_profit, stop_loss
        slot.expires_at_ms = stamp + request.max_holding_ms
        stop_price = stop_loss
        if request.trailing_stop_pct is not None:
            slot.trailing_stop = float(trail_price(request.side, price, request.trailing_stop_pct))
            if tighter_stop(request.side, slot.trailing_stop, stop_loss):
                stop_price = slot.trailing_stop
        data, sell = self.strategy.datas[slot.feed], self.strategy.sell
        exits = {"data": data, "size": size, "tradeid": slot.seq}
        stop = sell(price=stop_loss, exectype=bt.Order.Stop, stop_price=stop_price, **exits)
        slot.stop_order = stop
        sell(price=take_profit, exectype=bt.Order.Limit, oco=stop, **exits)
        sell(
            **exits,
            exectype=bt.Order.Close,
            oco=stop,
            deadline_ms=slot.expires_at_ms,
        )

    # -- what the strategy sees -----------------------------------------------------------

    def snapshot(self, slot: _Slot) -> Position:
        """The kernel `Position` record of a slot, as the strategy's context carries it."""
        request = slot.request
        limit = request.order_type is OrderType.LIMIT
        active = slot.opened_at_ms is not None
        entry = OrderState(
            client_order_id=client_order_id(BACKTEST_BOT, slot.seq, OrderRole.ENTRY),
            role=OrderRole.ENTRY,
            side=request.side,
            order_type=request.order_type,
            status=OrderStatus.FILLED if active else OrderStatus.OPEN,
            placed_at_ms=slot.placed_at_ms,
            updated_at_ms=slot.opened_at_ms or slot.placed_at_ms,
            price=request.limit_price,
            quantity=request.capital / request.limit_price if request.limit_price else None,
            quote_quantity=None if limit else request.capital,
            expires_at_ms=slot.placed_at_ms + request.maker_timeout_ms
            if request.maker_timeout_ms
            else None,
            filled_quantity=slot.quantity,
            average_price=slot.entry_price,
            fee=slot.entry_fee,
            reason=request.reason,
        )
        exits: tuple[OrderState, ...] = ()
        if active:
            assert slot.opened_at_ms is not None
            exits = (
                OrderState(
                    client_order_id=client_order_id(BACKTEST_BOT, slot.seq, OrderRole.TAKE_PROFIT),
                    role=OrderRole.TAKE_PROFIT,
                    side=Side.SELL if request.side is Side.BUY else Side.BUY,
                    order_type=OrderType.LIMIT,
                    status=OrderStatus.OPEN,
                    placed_at_ms=slot.opened_at_ms,
                    updated_at_ms=slot.opened_at_ms,
                    price=slot.take_profit,
                    quantity=slot.quantity,
                ),
            )
        return Position(
            bot=BACKTEST_BOT,
            seq=slot.seq,
            symbol=self.history.symbol,
            side=request.side,
            status=PositionStatus.ACTIVE if active else PositionStatus.PENDING,
            request=request,
            created_at_ms=slot.placed_at_ms,
            entry=entry,
            exits=exits,
            opened_at_ms=slot.opened_at_ms,
            take_profit_price=slot.take_profit,
            stop_loss_price=slot.stop_loss,
            trailing_stop_price=slot.trailing_stop,
            expires_at_ms=slot.expires_at_ms,
        )


def _naive_utc(time_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=time_ms)


class _AdapterStrategy(bt.Strategy):  # type: ignore[misc]
    """The backtrader strategy: forwards each bar's open and close to the `_Book`."""

    params = (("book", None),)

    def __init__(self) -> None:
        self.book: _Book = self.p.book
        self.book.strategy = self
        self.broker.on_execution = self.book.on_execution

    def next_open(self) -> None:
        self.book.at_open(int(self.data.row[0]), self.data.open[0])

    def next(self) -> None:
        self.book.at_close(int(self.data.row[0]))

    def notify_order(self, order: Any) -> None:
        if order.status == bt.Order.Expired:
            self.book.on_expired(order)
