"""The fast backtester: the strategy and the kernel's PositionBook over history.

There is no second implementation of fills here. A simulated clock walks the candles and,
for candle i: (1) feeds candle i to the book (`on_candle`: fills and exits of orders placed
earlier), then (2) asks the strategy at candle i's close and submits its entry to the book
at candle i's end_ms, so by fill model rule 1 it acts on candle i+1. That is the order the
live engine follows with a simulated book.

Why it is fast:
- the strategy is asked only on its decision rows: the ready ones, narrowed by its own
  `decision_rows` when it names them (`Strategy.decision_rows`); the loop walks those rows
  and, between them, only the candles the book needs;
- features come precomputed (batch) and reach the strategy through a reused read-only view
  (`research.backtest.decisions`); the candle object is built only if the strategy reads it;
- the book is fed only the candles on which something can happen to it. With nothing open
  it needs no candle. A pending entry gets every candle until it fills or times out. An
  active position can only change on a candle where the kernel's own predicates
  (`stop_touched`, `take_profit_touched`, vectorised over the coming candles) fire, or
  whose end reaches its holding deadline; on every other candle `PositionBook.on_candle`
  would return no events and change nothing, so it is skipped. A position with a trailing
  stop gets every candle (each may move its stop). The book still decides everything on
  the candles it sees.

A strategy's `Exit` at candle i's close asks the book to close its targets at candle i's
end_ms (`close_position`, reason `strategy`): a market exit that fills at candle i+1's open.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.decisions import Decider
from research.backtest.errors import BacktestError
from research.backtest.history import History, prepare_history, strategy_label
from research.backtest.metrics import build_result
from research.backtest.records import BacktestResult, Fill, TradeRecord, UnfilledEntry
from tradepipe.botconfig import BotConfig
from tradepipe.costs import PAPER_COSTS
from tradepipe.enums import ExitReason, OrderType, PositionStatus, Side
from tradepipe.features import FeatureSpec
from tradepipe.orders import (
    Event,
    FeeSchedule,
    OrderFilled,
    Position,
    PositionBook,
    PositionClosed,
    stop_touched,
    take_profit_touched,
)
from tradepipe.risk import BotRisk, RiskBreach, RiskLimits, exposure
from tradepipe.strategy import Exit, Strategy
from tradepipe.timeframes import Timeframe

__all__ = ["BACKTEST_BOT", "DEFAULT_FEES", "run_backtest", "starting_capital"]

# The paper broker's fees (tradepipe/costs.py): Binance spot's base tier, 0.1 % maker and taker.
DEFAULT_FEES = PAPER_COSTS.fees
BACKTEST_BOT = "backtest"  # the bot name in client order ids; one book per run
_FIRST_SCAN = 32  # candles scanned at first for an active position's next event


def starting_capital(config: BotConfig, initial_capital: float | None) -> float:
    """`initial_capital`, or enough for every position slot: capital per trade times
    max open positions (a bot can never commit more)."""
    capital = (
        config.capital_per_trade * config.max_open_positions
        if initial_capital is None
        else initial_capital
    )
    if not capital > 0:
        raise BacktestError(f"initial_capital must be > 0, got {capital}")
    return capital


def run_backtest(
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
    """Backtest `strategy` on `candles` (the CANDLE_COLUMNS layout, one timeframe).

    `features` (row-aligned with the candles) default to `compute_features(candles,
    feature_spec or default_spec())`; `probabilities` (one per candle, NaN for none) are
    the model's output the strategy sees as `model_probability`. Market orders fill
    `slippage_bps` worse (fill model rule 6; the research gates pass their venue's, see
    `tradepipe.costs`). Orders carry
    `strategy_hash` and `model_version`. Positions still open after the last candle are
    left open (see `BacktestResult`). Raises BacktestError for bad inputs and for a
    strategy that fails (naming it and the candle).
    """
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
    book = PositionBook.for_bot(BACKTEST_BOT, symbol, config, fees, slippage_bps=slippage_bps)
    run = _Run(history, RiskLimits.from_config(config))
    decide, request, submit = decider.decide, decider.request, book.submit_entry
    end_ms = run.end_ms
    rows = len(history)
    wake = rows  # the next row the book needs to see
    positions: tuple[Position, ...] = ()
    for row in decision_rows(history, strategy, config):
        while wake <= row:  # the book's candles up to and including this one come first
            run.record(wake, book.on_candle(history.candle(wake)))
            positions = book.positions
            wake = run.next_wake(wake, positions)
        decision = decide(row, positions)
        if decision is None:
            continue
        if isinstance(decision, Exit):
            targets = decider.exit_targets(decision, row, positions)
            run.record(row, _close(book, targets, end_ms[row]))
        else:
            entry = request(decision, row)
            if not run.admits(end_ms[row], entry.capital, positions):
                continue  # refused by the risk limits: nothing changed
            run.record(row, submit(entry, end_ms[row]))
        positions = book.positions
        wake = run.next_wake(row, positions)
    while wake < rows:
        run.record(wake, book.on_candle(history.candle(wake)))
        positions = book.positions
        wake = run.next_wake(wake, positions)
    result = build_result(history, run.fills, run.trades, run.unfilled, positions, capital)
    return replace(result, risk_breaches=tuple(run.breaches), entries_refused=run.refused)


def decision_rows(history: History, strategy: Strategy[Any], config: BotConfig) -> list[int]:
    """The rows on which the strategy is asked: the ready ones, narrowed to its own
    `decision_rows` where it gives them (Strategy.decision_rows says why that changes
    no decision). A strategy whose `on_candle` was replaced on the instance (a recorder,
    as the review and the look-ahead check use) is asked on every ready row: the narrowing
    speaks for the class's `on_candle` only, and the replacement wants to see every call."""
    ready = history.ready
    narrowed = type(strategy).decision_rows is not Strategy.decision_rows
    if narrowed and "on_candle" not in getattr(strategy, "__dict__", {}):
        # a copy: what the strategy does to its frame cannot reach what on_candle sees
        rows = strategy.decision_rows(history.features.copy(), history.probability_values, config)
        if rows is not None:
            ready = ready & _checked_rows(rows, len(history), strategy)
    return np.flatnonzero(ready).tolist()


def _checked_rows(rows: object, count: int, strategy: Strategy[Any]) -> npt.NDArray[np.bool_]:
    array = np.asarray(rows)
    if array.dtype != np.bool_ or array.shape != (count,):
        raise BacktestError(
            f"strategy {strategy_label(strategy)}: decision_rows returned "
            f"{array.dtype} of shape {array.shape}; expected one bool per candle ({count},)"
        )
    return array


def _close(book: PositionBook, targets: tuple[int, ...], time_ms: int) -> tuple[Event, ...]:
    """A strategy's `Exit`: each target leaves at market (the next candle's open)."""
    events: list[Event] = []
    for seq in targets:
        events += book.close_position(seq, time_ms, ExitReason.STRATEGY)
    return tuple(events)


class _Run:
    """What one run collects from the book's events, and when the book next needs a candle."""

    def __init__(self, history: History, limits: RiskLimits) -> None:
        self.history = history
        # the live engine's risk check (tradepipe/risk.py); the only bot here is this one
        self.limits = limits
        self.risk = BotRisk(BACKTEST_BOT)
        self.breaches: list[RiskBreach] = []
        self.refused = 0
        self.fills: list[Fill] = []
        self.trades: list[TradeRecord] = []
        self.unfilled: list[UnfilledEntry] = []
        self._rows = len(history)
        self.end_ms: list[int] = history.end_ms.tolist()  # candle ends, for bisect
        # a candle's open lies within [low, high] in valid data; widening by it keeps the
        # scan a superset of the book's checks even on data that breaks that
        self._low = np.minimum(history.low, history.open)
        self._high = np.maximum(history.high, history.open)
        self._wakes: dict[int, int] = {}  # active position seq -> row of its next event

    def record(self, row: int, events: tuple[Event, ...]) -> None:
        for event in events:
            if isinstance(event, OrderFilled):
                order = event.order
                self.fills.append(
                    Fill(
                        row,
                        event.time_ms,
                        order.role.value,
                        order.side is Side.BUY,
                        event.price,
                        event.quantity,
                        event.fee,
                    )
                )
            elif isinstance(event, PositionClosed):
                position = event.position
                self._wakes.pop(position.seq, None)
                breach = self.risk.on_close(position, self.limits)
                if breach is not None:
                    self.breaches.append(breach)
                if position.quantity > 0:
                    self.trades.append(TradeRecord.from_position(position))
                else:
                    assert position.closed_at_ms is not None
                    assert position.entry.price is not None
                    assert position.exit_reason is not None
                    self.unfilled.append(
                        UnfilledEntry(
                            placed_at_ms=position.entry.placed_at_ms,
                            cancelled_at_ms=position.closed_at_ms,
                            limit_price=position.entry.price,
                            reason=position.exit_reason.value,
                        )
                    )

    def admits(self, time_ms: int, capital: float, positions: tuple[Position, ...]) -> bool:
        """The risk check before an entry (False: refused, counted)."""
        breach, refusal = self.risk.admit(
            self.limits, time_ms, capital, symbol_exposure=exposure(positions)
        )
        if breach is not None:
            self.breaches.append(breach)
        if refusal is not None:
            self.refused += 1
        return refusal is None

    def next_wake(self, row: int, positions: tuple[Position, ...]) -> int:
        """The first row after `row` on which the book can change."""
        wake = self._rows
        for position in positions:
            if (
                position.status is not PositionStatus.ACTIVE
                or position.pending_exit
                or position.trailing_stop_price is not None  # its stop moves with each candle
            ):
                return row + 1
            if any(
                order.is_working and order.order_type is OrderType.MARKET
                for order in position.exits
            ):
                return row + 1
            due = self._wakes.get(position.seq)
            if due is None or due <= row:
                due = self._wakes[position.seq] = self._scan(position, row + 1)
            wake = min(wake, due)
        return wake

    def _scan(self, position: Position, first: int) -> int:
        """The first row >= `first` on which a barrier is touched or the holding deadline
        is reached (the end of history if none)."""
        take_profit, stop_loss = position.take_profit_price, position.stop_loss_price
        deadline = position.expires_at_ms
        if take_profit is None or stop_loss is None or deadline is None:
            raise BacktestError(f"active position {position.seq} has no barriers")  # kernel bug
        side = position.side
        # the first row whose end reaches the deadline (a list bisect: no numpy call)
        last = bisect_left(self.end_ms, deadline)
        stop = min(last + 1, self._rows)
        start, width = first, _FIRST_SCAN
        while start < stop:
            end = min(start + width, stop)
            low, high = self._low[start:end], self._high[start:end]
            touched = stop_touched(side, low, high, stop_loss)
            touched |= take_profit_touched(side, low, high, take_profit)
            hit = int(touched.argmax())
            if touched[hit]:
                return start + hit
            start, width = end, width * 4
        return max(first, min(last, self._rows))
