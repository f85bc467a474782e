"""Accounting and lifecycle invariants of a simulated book over random markets and decisions,
and the state round trip (a restart anywhere changes nothing)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import event as tally
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.domain import Candle
from tradepipe.enums import ExitReason, OrderType, PositionStatus, Side
from tradepipe.orders import (
    EntryRequest,
    Event,
    FeeSchedule,
    OrderCancelled,
    OrderFilled,
    Position,
    PositionBook,
    PositionClosed,
    event_from_dict,
    event_to_dict,
)
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")


@dataclass(frozen=True)
class Action:
    """What the strategy does at a candle's close: 0 nothing, 1 market, 2 limit, 3 close."""

    kind: int
    offset_pct: int = 0  # limit price below (buy) or above (sell) the close
    target: int = 0  # which open position to close


@st.composite
def markets(draw: st.DrawFn) -> list[tuple[Candle, Action]]:
    """Coarse integer-percent moves make gaps through barriers and two-barrier candles common."""
    steps = draw(st.integers(min_value=1, max_value=40))
    price, start, rows = 100.0, 0, []
    for _ in range(steps):
        start += 60_000 * draw(st.sampled_from([1, 1, 1, 1, 2, 7]))
        open_ = price * (1 + draw(st.integers(-3, 3)) / 100)
        close = open_ * (1 + draw(st.integers(-4, 4)) / 100)
        high = max(open_, close) * (1 + draw(st.integers(0, 4)) / 100)
        low = min(open_, close) * (1 - draw(st.integers(0, 4)) / 100)
        price = close
        action = Action(
            draw(st.sampled_from([0, 0, 1, 1, 2, 3])),
            draw(st.integers(-2, 4)),
            draw(st.integers(0, 3)),
        )
        rows.append((Candle("BTCUSDT", MINUTE, start, open_, high, low, close, 1.0), action))
    return rows


@dataclass(frozen=True)
class Setup:
    side: Side
    take_profit_pct: float
    stop_loss_pct: float
    holding_minutes: int
    timeout_minutes: int
    max_open: int
    fees: FeeSchedule


setups = st.builds(
    Setup,
    side=st.sampled_from(Side),
    take_profit_pct=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]),
    stop_loss_pct=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]),
    holding_minutes=st.integers(1, 12),
    timeout_minutes=st.integers(1, 4),
    max_open=st.integers(1, 4),
    fees=st.builds(
        FeeSchedule,
        maker_rate=st.sampled_from([0.0, 0.0002, 0.001]),
        taker_rate=st.sampled_from([0.0, 0.0004, 0.002]),
    ),
)


def decide(book: PositionBook, setup: Setup, candle: Candle, action: Action) -> tuple[Event, ...]:
    common = {
        "capital": 1_000.0,
        "take_profit_pct": setup.take_profit_pct,
        "stop_loss_pct": setup.stop_loss_pct,
        "max_holding_ms": setup.holding_minutes * 60_000,
        "side": setup.side,
    }
    if action.kind == 1:
        return book.submit_entry(EntryRequest(order_type=OrderType.MARKET, **common), candle.end_ms)  # type: ignore[arg-type]
    if action.kind == 2:
        sign = -1 if setup.side is Side.BUY else 1
        request = EntryRequest(
            order_type=OrderType.LIMIT,
            limit_price=candle.close * (1 + sign * action.offset_pct / 100),
            maker_timeout_ms=setup.timeout_minutes * 60_000,
            **common,  # type: ignore[arg-type]
        )
        return book.submit_entry(request, candle.end_ms)
    if action.kind == 3 and book.positions:
        target = book.positions[action.target % len(book.positions)]
        return book.close_position(target.seq, candle.end_ms)
    return ()


def run(
    setup: Setup, market: list[tuple[Candle, Action]], restart_at: int | None = None
) -> tuple[list[Event], PositionBook]:
    book = PositionBook("bot1", "BTCUSDT", max_open_positions=setup.max_open, fees=setup.fees)
    events: list[Event] = []
    for step, (candle, action) in enumerate(market):
        if step == restart_at:
            book = PositionBook.from_dict(json.loads(json.dumps(book.to_dict())))
        events += book.on_candle(candle)
        assert len(book.positions) <= setup.max_open
        events += decide(book, setup, candle, action)
        assert len(book.positions) <= setup.max_open
    return events, book


@settings(max_examples=300, deadline=None)
@given(setups, markets())
def test_accounting_and_lifecycle_invariants(
    setup: Setup, market: list[tuple[Candle, Action]]
) -> None:
    events, book = run(setup, market)
    closes: dict[int, list[Position]] = defaultdict(list)
    cash: dict[int, float] = defaultdict(float)
    last_time: dict[int, int] = {}
    for event in events:
        seq = getattr(event, "position_seq", None)
        if seq is not None:  # times never go back within a position
            assert event.time_ms >= last_time.get(seq, event.time_ms)
            last_time[seq] = event.time_ms
        if isinstance(event, OrderFilled):
            cash[event.position_seq] += event.cash_flow
            assert event.fee == pytest.approx(
                setup.fees.rate(event.liquidity) * event.price * event.quantity, abs=1e-12
            )
        if isinstance(event, PositionClosed):
            closes[event.position.seq].append(event.position)
    for seq, [position] in closes.items():  # exactly one close per position
        assert position.status is PositionStatus.CLOSED and position.exit_reason is not None
        assert position.seq not in {p.seq for p in book.positions}
        assert position.net_pnl == position.gross_pnl - position.fees
        assert math.isclose(cash[seq], position.net_pnl, rel_tol=1e-9, abs_tol=1e-9)
        assert position.closed_at_ms is not None
        assert position.closed_at_ms >= (position.opened_at_ms or position.created_at_ms)
        if position.opened_at_ms is not None:
            assert position.opened_at_ms >= position.created_at_ms
        check_exit(position, setup)
        tally(f"exit: {position.exit_reason}")
    for position in book.positions:  # still open: only the entry has moved cash
        assert position.exit_quantity == 0
        entry_cash = -position.quantity * (position.entry_price or 0.0) - position.entry_fee
        if setup.side is Side.SELL:
            entry_cash = position.quantity * (position.entry_price or 0.0) - position.entry_fee
        assert math.isclose(cash[position.seq], entry_cash, rel_tol=1e-9, abs_tol=1e-9)


def check_exit(position: Position, setup: Setup) -> None:
    if position.opened_at_ms is None:  # never filled: no trade at all
        assert position.exit_reason in (ExitReason.MAKER_TIMEOUT, ExitReason.MANUAL)
        assert position.quantity == 0 and position.fees == 0 and position.exits == ()
        return
    assert position.entry_price is not None and position.exit_price is not None
    sized_at = position.entry_price if position.entry.price is None else position.entry.price
    assert position.quantity * sized_at == pytest.approx(1_000.0)
    assert position.exit_quantity == pytest.approx(position.quantity)
    sign = 1 if setup.side is Side.BUY else -1
    gross = position.quantity * sign * (position.exit_price - position.entry_price)
    assert position.gross_pnl == pytest.approx(gross, abs=1e-9)
    if position.exit_reason is ExitReason.TAKE_PROFIT:
        assert position.exit_price == position.take_profit_price
    if position.exit_reason is ExitReason.STOP_LOSS:
        assert position.stop_loss_price is not None
        assert sign * (position.exit_price - position.stop_loss_price) <= 0
    assert position.exit_reason in (
        ExitReason.TAKE_PROFIT,
        ExitReason.STOP_LOSS,
        ExitReason.TIMEOUT,
        ExitReason.MANUAL,
    )


@settings(max_examples=150, deadline=None)
@given(setups, markets(), st.integers(min_value=0, max_value=40))
def test_a_restart_from_saved_state_changes_nothing(
    setup: Setup, market: list[tuple[Candle, Action]], restart_at: int
) -> None:
    straight, book = run(setup, market)
    restarted, resumed = run(setup, market, restart_at=restart_at)
    assert restarted == straight
    assert resumed.to_dict() == book.to_dict()
    for event in straight:
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


def replay_on_a_live_book(setup: Setup, market: list[tuple[Candle, Action]]) -> list[Event]:
    """Drive a live book with what the simulated venue did, reported as a broker would:
    fills as fills, and each simulated cancel as the tick that triggers it followed by
    the venue's confirmation."""
    simulated = PositionBook("bot1", "BTCUSDT", max_open_positions=1, fees=setup.fees)
    live = PositionBook("bot1", "BTCUSDT", max_open_positions=1, fees=setup.fees, simulated=False)
    live_events: list[Event] = []

    def report(events: tuple[Event, ...]) -> None:
        for event in events:
            if isinstance(event, OrderCancelled) and event.reason != "manual":
                position = live.position(event.position_seq)
                assert position is not None
                stop = position.stop_loss_price if event.reason == "stop_loss" else None
                live_events.extend(live.on_tick(event.time_ms, price=stop))
            if isinstance(event, OrderCancelled):
                live_events.extend(live.on_cancelled(event.order.client_order_id, event.time_ms))
            if isinstance(event, OrderFilled):
                live_events.extend(
                    live.on_fill(
                        event.order.client_order_id,
                        event.price,
                        event.time_ms,
                        quantity=event.quantity,
                        fee=event.fee,
                        liquidity=event.liquidity,
                    )
                )

    for candle, action in market:
        report(simulated.on_candle(candle))
        if action.kind == 3 and simulated.positions:
            live_events.extend(live.close_position(simulated.positions[0].seq, candle.end_ms))
        report(decide(simulated, setup, candle, action))
        if action.kind in (1, 2):
            live_events.extend(decide(live, setup, candle, action))
    return live_events


def outcome(position: Position) -> tuple[object, ...]:
    return (
        position.seq,
        position.exit_reason,
        position.entry_price,
        position.quantity,
        position.exit_price,
        position.fees,
        position.net_pnl,
        position.opened_at_ms,
        position.closed_at_ms,
        position.take_profit_price,
        [order.client_order_id for order in position.exits],
    )


@settings(max_examples=200, deadline=None)
@given(setups, markets())
def test_a_live_book_fed_the_same_fills_closes_the_same_positions(
    setup: Setup, market: list[tuple[Candle, Action]]
) -> None:
    simulated, _ = run(Setup(**(vars(setup) | {"max_open": 1})), market)
    live = replay_on_a_live_book(setup, market)
    assert not [event for event in live if event.kind == "anomaly"]
    closes = [outcome(e.position) for e in simulated if isinstance(e, PositionClosed)]
    assert [outcome(e.position) for e in live if isinstance(e, PositionClosed)] == closes
