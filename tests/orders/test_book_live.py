"""A live book: driven by a venue's reports (fills, cancels, rejections) and clock ticks."""

from __future__ import annotations

import pytest

from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus
from tradepipe.orders import (
    Anomaly,
    EntryRequest,
    Event,
    FeeSchedule,
    OrderCancelRequested,
    OrderPlaced,
    PositionBook,
    PositionClosed,
)

FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)


def request(order_type: OrderType = OrderType.MARKET, **changes: object) -> EntryRequest:
    values: dict[str, object] = {
        "order_type": order_type,
        "capital": 1_000.0,
        "take_profit_pct": 10.0,
        "stop_loss_pct": 10.0,
        "max_holding_ms": 60_000,
    }
    if order_type is OrderType.LIMIT:
        values |= {"limit_price": 100.0, "maker_timeout_ms": 5_000}
    return EntryRequest(**(values | changes))  # type: ignore[arg-type]


def live() -> PositionBook:
    return PositionBook("bot1", "BTCUSDT", fees=FEES, simulated=False, max_open_positions=3)


def kinds(events: tuple[Event, ...]) -> list[str]:
    return [event.kind for event in events]


def placed(events: tuple[Event, ...]) -> list[str]:
    return [e.order.client_order_id for e in events if isinstance(e, OrderPlaced)]


def active_book() -> PositionBook:
    positions = live()
    positions.submit_entry(request(), 1_000)
    positions.on_accepted("bot1-1-en", 1_001)
    positions.on_fill("bot1-1-en", 100.0, 1_002)
    return positions


def test_orders_start_new_and_open_when_the_venue_accepts_them() -> None:
    positions = live()
    events = positions.submit_entry(request(), 1_000)
    assert placed(events) == ["bot1-1-en"]
    before = positions.positions[0].entry
    assert before.status is OrderStatus.NEW and before.quote_quantity == 1_000.0
    assert kinds(positions.on_accepted("bot1-1-en", 1_001)) == ["order_accepted"]
    after = positions.positions[0].entry
    assert after.status is OrderStatus.OPEN


def test_a_full_entry_fill_activates_and_places_the_take_profit() -> None:
    positions = live()
    positions.submit_entry(request(), 1_000)
    events = positions.on_fill("bot1-1-en", 100.0, 1_002)
    assert kinds(events) == ["order_filled", "position_opened", "order_placed"]
    position = positions.positions[0]
    assert position.status is PositionStatus.ACTIVE
    assert position.quantity == pytest.approx(10.0)  # quote-sized market buy
    assert position.entry_fee == pytest.approx(2.0)  # taker by default for market orders
    assert position.exits[0].status is OrderStatus.NEW


def test_take_profit_fill_closes_the_position() -> None:
    positions = active_book()
    event = [
        e for e in positions.on_fill("bot1-1-tp", 110.0, 5_000) if isinstance(e, PositionClosed)
    ]
    assert event[0].exit_reason is ExitReason.TAKE_PROFIT
    assert event[0].position.exit_fee == pytest.approx(1_100 * 0.001)
    assert positions.positions == ()


def test_stop_waits_for_the_take_profit_cancel_before_selling() -> None:
    positions = active_book()
    assert positions.on_tick(2_000, price=95.0) == ()
    events = positions.on_tick(3_000, price=89.0)
    assert kinds(events) == ["order_cancel_requested"]
    assert positions.on_tick(3_100, price=88.0) == ()  # already waiting
    events = positions.on_cancelled("bot1-1-tp", 3_200)
    assert kinds(events) == ["order_cancelled", "order_placed"]
    assert placed(events) == ["bot1-1-sl"]
    events = positions.on_fill("bot1-1-sl", 88.5, 3_300, fee=1.0)
    [event] = [e for e in events if isinstance(e, PositionClosed)]
    assert event.exit_reason is ExitReason.STOP_LOSS
    assert event.position.net_pnl == pytest.approx(10 * -11.5 - 2.0 - 1.0)


def test_take_profit_filling_while_its_cancel_is_in_flight_wins() -> None:
    positions = active_book()
    positions.on_tick(3_000, price=89.0)
    events = positions.on_fill("bot1-1-tp", 110.0, 3_050)
    assert [e.exit_reason for e in events if isinstance(e, PositionClosed)] == [
        ExitReason.TAKE_PROFIT
    ]
    assert positions.on_cancelled("bot1-1-tp", 3_100) == ()  # a late answer is harmless


def test_holding_timeout_cancels_the_take_profit_then_exits_at_market() -> None:
    positions = active_book()
    assert positions.on_tick(61_001) == ()
    events = positions.on_tick(61_002)
    assert isinstance(events[0], OrderCancelRequested)
    events = positions.on_cancelled("bot1-1-tp", 61_100)
    assert placed(events) == ["bot1-1-tx"]
    [event] = [
        e for e in positions.on_fill("bot1-1-tx", 101.0, 61_200) if isinstance(e, PositionClosed)
    ]
    assert event.exit_reason is ExitReason.TIMEOUT


def test_maker_timeout_with_nothing_filled_closes_without_a_trade() -> None:
    positions = live()
    positions.submit_entry(request(OrderType.LIMIT), 1_000)
    assert positions.on_tick(5_999) == ()
    assert kinds(positions.on_tick(6_000)) == ["order_cancel_requested"]
    events = positions.on_cancelled("bot1-1-en", 6_100)
    assert kinds(events) == ["order_cancelled", "position_closed"]
    [event] = [e for e in events if isinstance(e, PositionClosed)]
    assert event.exit_reason is ExitReason.MAKER_TIMEOUT


def test_partial_fill_then_maker_timeout_keeps_the_filled_part() -> None:
    positions = live()
    positions.submit_entry(request(OrderType.LIMIT), 1_000)
    events = positions.on_fill("bot1-1-en", 100.0, 2_000, quantity=4.0, complete=False)
    assert positions.positions[0].entry.status is OrderStatus.PARTIALLY_FILLED
    assert kinds(events) == ["order_filled"]
    positions.on_tick(6_000)
    events = positions.on_cancelled("bot1-1-en", 6_100)
    assert kinds(events) == ["order_cancelled", "position_opened", "order_placed"]
    position = positions.positions[0]
    assert position.quantity == 4.0 and position.exits[0].quantity == 4.0
    assert position.entry_fee == pytest.approx(400 * 0.001)  # maker by default for limits
    assert kinds(positions.on_tick(6_200, price=80.0)) == ["order_cancel_requested"]


def test_a_fill_racing_the_maker_timeout_cancel_still_opens_the_position() -> None:
    positions = live()
    positions.submit_entry(request(OrderType.LIMIT), 1_000)
    positions.on_tick(6_000)
    events = positions.on_fill("bot1-1-en", 100.0, 6_050)
    assert "position_opened" in kinds(events)
    assert positions.on_cancelled("bot1-1-en", 6_100) == ()
    assert positions.positions[0].pending_exit is None  # the stop and timeout still work
    assert kinds(positions.on_tick(6_200, price=80.0)) == ["order_cancel_requested"]


def test_rejected_entry_closes_as_rejected() -> None:
    positions = live()
    positions.submit_entry(request(), 1_000)
    events = positions.on_rejected("bot1-1-en", 1_001, "insufficient balance")
    [event] = [e for e in events if isinstance(e, PositionClosed)]
    assert event.exit_reason is ExitReason.REJECTED


def test_rejected_exit_is_retried_with_a_new_client_order_id() -> None:
    positions = active_book()
    positions.on_tick(3_000, price=89.0)
    positions.on_cancelled("bot1-1-tp", 3_100)
    events = positions.on_rejected("bot1-1-sl", 3_200, "venue busy")
    assert kinds(events) == ["order_rejected", "anomaly"]
    assert placed(positions.on_tick(3_300, price=89.0)) == ["bot1-1-sl-2"]


def test_manual_close_of_a_live_position() -> None:
    positions = active_book()
    assert kinds(positions.close_position(1, 2_000)) == ["order_cancel_requested"]
    assert positions.close_position(1, 2_001) == ()
    assert placed(positions.on_cancelled("bot1-1-tp", 2_100)) == ["bot1-1-mx"]
    events = positions.on_fill("bot1-1-mx", 100.0, 2_200)
    [event] = [e for e in events if isinstance(e, PositionClosed)]
    assert event.exit_reason is ExitReason.MANUAL
    assert event.position.exits[-1].role is OrderRole.MARKET_EXIT


def test_reports_for_unknown_or_finished_orders_are_anomalies() -> None:
    positions = active_book()
    assert kinds(positions.on_fill("other-1-en", 1.0, 2_000)) == ["anomaly"]
    assert kinds(positions.on_fill("bot1-9-en", 1.0, 2_000)) == ["anomaly"]
    [anomaly] = positions.on_fill("bot1-1-en", 1.0, 2_000)  # already filled
    assert isinstance(anomaly, Anomaly) and "filled" in anomaly.message
    positions.on_fill("bot1-1-tp", 110.0, 3_000)
    assert kinds(positions.on_fill("bot1-1-tp", 110.0, 3_001)) == ["anomaly"]  # closed
