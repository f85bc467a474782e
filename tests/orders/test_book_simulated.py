"""Every transition of a simulated book, driven by candles as a backtest drives it."""

from __future__ import annotations

import pytest

from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus, Side
from tradepipe.orders import (
    EntryRefused,
    EntryRequest,
    Event,
    FeeSchedule,
    InvalidOrderError,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    PositionBook,
    PositionClosed,
    PositionOpened,
    PositionPending,
)
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")
FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)


def minute(index: int, open_: float, high: float, low: float, close: float) -> Candle:
    return Candle("BTCUSDT", MINUTE, index * 60_000, open_, high, low, close, 1.0)


def market(**changes: object) -> EntryRequest:
    values: dict[str, object] = {
        "order_type": OrderType.MARKET,
        "capital": 1_000.0,
        "take_profit_pct": 10.0,
        "stop_loss_pct": 10.0,
        "max_holding_ms": 5 * 60_000,
    }
    return EntryRequest(**(values | changes))  # type: ignore[arg-type]


def limit(price: float, timeout_minutes: int = 3, **changes: object) -> EntryRequest:
    return market(
        order_type=OrderType.LIMIT,
        limit_price=price,
        maker_timeout_ms=timeout_minutes * 60_000,
        **changes,
    )


def book(**options: object) -> PositionBook:
    return PositionBook("bot1", "BTCUSDT", fees=FEES, **options)  # type: ignore[arg-type]


def kinds(events: tuple[Event, ...]) -> list[str]:
    return [event.kind for event in events]


def closed(events: tuple[Event, ...]) -> PositionClosed:
    [event] = [e for e in events if isinstance(e, PositionClosed)]
    return event


def test_market_entry_fills_at_the_next_candles_open_sized_by_capital() -> None:
    positions = book()
    events = positions.submit_entry(market(), time_ms=60_000)  # decided at candle 0's close
    assert kinds(events) == ["position_pending", "order_placed"]
    assert isinstance(events[0], PositionPending)
    assert events[0].position.status is PositionStatus.PENDING
    events = positions.on_candle(minute(1, 100, 101, 99, 100))
    assert kinds(events) == ["order_filled", "position_opened", "order_placed"]
    fill, opened, take_profit = events
    assert isinstance(fill, OrderFilled) and isinstance(opened, PositionOpened)
    assert (fill.price, fill.quantity, fill.time_ms) == (100.0, 10.0, 60_000)
    assert fill.fee == pytest.approx(1_000 * 0.002)
    position = opened.position
    assert position.entry_price == 100.0 and position.quantity == 10.0
    assert position.take_profit_price == pytest.approx(110.0)
    assert position.stop_loss_price == pytest.approx(90.0)
    assert position.expires_at_ms == 60_000 + 5 * 60_000
    assert isinstance(take_profit, OrderPlaced)
    assert take_profit.order.role is OrderRole.TAKE_PROFIT
    assert take_profit.order.client_order_id == "bot1-1-tp"
    assert take_profit.order.price == pytest.approx(110.0)


def test_a_candle_that_began_before_the_decision_is_not_used() -> None:
    positions = book()
    positions.submit_entry(market(), time_ms=90_000)  # mid-candle 1
    assert positions.on_candle(minute(1, 100, 101, 99, 100)) == ()
    assert kinds(positions.on_candle(minute(2, 100, 101, 99, 100)))[0] == "order_filled"


def test_take_profit_closes_with_maker_fee_and_pnl() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    event = closed(positions.on_candle(minute(2, 100, 111, 99, 105)))
    position = event.position
    assert event.exit_reason is ExitReason.TAKE_PROFIT
    assert position.exit_price == pytest.approx(110.0)
    assert position.gross_pnl == pytest.approx(100.0)
    assert position.fees == pytest.approx(2.0 + 1_100 * 0.001)
    assert position.net_pnl == pytest.approx(100.0 - 3.1)
    assert positions.positions == ()


def test_both_barriers_in_one_candle_stop_loss_wins() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    events = positions.on_candle(minute(2, 100, 120, 80, 100))
    assert kinds(events) == [
        "order_cancelled",
        "order_placed",
        "order_filled",
        "position_closed",
    ]
    cancelled, placed, fill, _ = events
    assert isinstance(cancelled, OrderCancelled) and cancelled.order.role is OrderRole.TAKE_PROFIT
    assert isinstance(placed, OrderPlaced) and placed.order.client_order_id == "bot1-1-sl"
    assert isinstance(fill, OrderFilled) and fill.price == pytest.approx(90.0)
    assert closed(events).exit_reason is ExitReason.STOP_LOSS


def test_gap_through_the_stop_fills_at_the_open() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    event = closed(positions.on_candle(minute(2, 80, 85, 75, 82)))
    assert event.exit_reason is ExitReason.STOP_LOSS
    assert event.position.exit_price == 80.0
    assert event.position.closed_at_ms == 120_000


def test_market_entry_candle_itself_can_hit_either_barrier() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    event = closed(positions.on_candle(minute(1, 100, 111, 99, 100)))
    assert event.exit_reason is ExitReason.TAKE_PROFIT


def test_holding_timeout_exits_at_the_close_of_the_candle_ending_at_the_deadline() -> None:
    positions = book()
    positions.submit_entry(market(max_holding_ms=3 * 60_000), 60_000)
    assert not any(
        isinstance(e, PositionClosed) for e in positions.on_candle(minute(1, 100, 101, 99, 100))
    )
    positions.on_candle(minute(2, 100, 101, 99, 100))
    event = closed(positions.on_candle(minute(3, 100, 101, 99, 103)))  # ends at 240_000
    assert event.exit_reason is ExitReason.TIMEOUT
    assert (event.position.exit_price, event.position.closed_at_ms) == (103.0, 240_000)
    assert event.position.exits[-1].role is OrderRole.TIMEOUT_EXIT


def test_timeout_after_a_gap_in_the_data_exits_at_the_next_open() -> None:
    positions = book()
    positions.submit_entry(market(max_holding_ms=2 * 60_000), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    event = closed(positions.on_candle(minute(9, 95, 120, 80, 100)))
    assert event.exit_reason is ExitReason.TIMEOUT
    assert (event.position.exit_price, event.position.closed_at_ms) == (95.0, 540_000)


def test_limit_not_touched_is_cancelled_by_the_maker_timeout_without_a_trade() -> None:
    positions = book()
    positions.submit_entry(limit(95.0, timeout_minutes=2), 60_000)
    assert positions.on_candle(minute(1, 100, 101, 96, 100)) == ()
    assert positions.on_candle(minute(2, 100, 101, 96, 100)) == ()  # ends at the deadline
    events = positions.on_candle(minute(3, 100, 101, 90, 100))  # would fill, but too late
    assert kinds(events) == ["order_cancelled", "position_closed"]
    event = closed(events)
    assert event.exit_reason is ExitReason.MAKER_TIMEOUT
    assert event.position.closed_at_ms == 60_000 + 120_000
    assert event.position.quantity == 0 and event.position.net_pnl == 0
    assert event.position.entry.status is OrderStatus.CANCELLED


def test_limit_touched_fills_at_its_price_as_maker_and_cannot_take_profit_on_that_candle() -> None:
    positions = book()
    positions.submit_entry(limit(95.0), 60_000)
    events = positions.on_candle(minute(1, 100, 130, 95, 100))  # high above TP 104.5
    assert kinds(events) == ["order_filled", "position_opened", "order_placed"]
    fill = events[0]
    assert isinstance(fill, OrderFilled)
    assert (fill.price, fill.time_ms) == (95.0, 120_000)
    assert fill.quantity == pytest.approx(1_000 / 95)
    assert fill.fee == pytest.approx(1_000 * 0.001)


def test_limit_filled_inside_the_candle_can_still_stop_on_it() -> None:
    positions = book()
    positions.submit_entry(limit(95.0), 60_000)
    event = closed(positions.on_candle(minute(1, 100, 101, 80, 90)))
    assert event.exit_reason is ExitReason.STOP_LOSS
    assert event.position.opened_at_ms == event.position.closed_at_ms == 120_000


def test_marketable_limit_fills_at_the_open_as_taker() -> None:
    positions = book()
    positions.submit_entry(limit(105.0), 60_000)
    fill = positions.on_candle(minute(1, 100, 101, 99, 100))[0]
    assert isinstance(fill, OrderFilled)
    assert (fill.price, fill.time_ms) == (100.0, 60_000)
    assert fill.fee == pytest.approx(100 * (1_000 / 105) * 0.002)


def test_entries_beyond_max_open_positions_are_refused_with_a_reason() -> None:
    positions = book(max_open_positions=2)
    positions.submit_entry(market(), 60_000)
    positions.submit_entry(limit(90.0), 60_000)
    [refusal] = positions.submit_entry(market(), 60_000)
    assert isinstance(refusal, EntryRefused)
    assert "max_open_positions" in refusal.reason
    assert [p.seq for p in positions.positions] == [1, 2]
    assert positions.next_seq == 3  # a refusal does not use a sequence number


def test_manual_close_of_a_pending_entry_cancels_it() -> None:
    positions = book()
    positions.submit_entry(limit(90.0), 60_000)
    events = positions.close_position(1, 70_000)
    assert closed(events).exit_reason is ExitReason.MANUAL
    assert closed(events).position.entry.status is OrderStatus.CANCELLED


def test_manual_close_of_an_active_position_sells_at_the_next_open() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    events = positions.close_position(1, 120_000)
    assert kinds(events) == ["order_cancelled", "order_placed"]
    event = closed(positions.on_candle(minute(2, 102, 120, 80, 100)))
    assert event.exit_reason is ExitReason.MANUAL
    assert (event.position.exit_price, event.position.closed_at_ms) == (102.0, 120_000)
    assert event.position.net_pnl == pytest.approx(20.0 - 2.0 - 1_020 * 0.002)


def test_close_of_an_unknown_position_is_an_anomaly_not_an_exception() -> None:
    assert kinds(book().close_position(7, 0)) == ["anomaly"]


def test_replayed_or_old_candles_are_ignored() -> None:
    positions = book()
    positions.submit_entry(market(), 60_000)
    first = positions.on_candle(minute(1, 100, 101, 99, 100))
    assert first and positions.on_candle(minute(1, 100, 101, 99, 100)) == ()


def test_short_position_profits_when_price_falls() -> None:
    positions = book()
    positions.submit_entry(market(side=Side.SELL), 60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))
    event = closed(positions.on_candle(minute(2, 100, 101, 89, 95)))
    assert event.exit_reason is ExitReason.TAKE_PROFIT
    assert event.position.gross_pnl == pytest.approx(100.0)


def test_entry_request_from_a_bot_config() -> None:
    config = BotConfig(
        capital_per_trade=250,
        take_profit_pct=1.5,
        stop_loss_pct=0.5,
        max_holding_seconds=3600,
        maker_order_timeout_seconds=30,
        max_open_positions=3,
    )
    request = EntryRequest.from_config(config, limit_price=10.0, strategy_hash="abc")
    assert request.order_type is OrderType.LIMIT
    assert (request.max_holding_ms, request.maker_timeout_ms) == (3_600_000, 30_000)
    assert EntryRequest.from_config(config).order_type is OrderType.MARKET
    assert PositionBook.for_bot("b", "X", config, FEES).max_open_positions == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"capital": 0.0}, "capital"),
        ({"take_profit_pct": -1.0}, "take_profit_pct"),
        ({"limit_price": 5.0}, "limit_price"),
        ({"order_type": OrderType.LIMIT}, "limit_price"),
    ],
)
def test_invalid_entry_requests_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidOrderError, match=field):
        market(**changes)


def test_fee_schedule_refuses_impossible_rates() -> None:
    with pytest.raises(InvalidOrderError, match="taker_rate"):
        FeeSchedule(taker_rate=1.5)


def test_book_refuses_unusable_bot_names_and_wrong_drivers() -> None:
    with pytest.raises(InvalidOrderError, match="bot name"):
        PositionBook("a bot with spaces", "X")
    with pytest.raises(RuntimeError, match="live book"):
        book().on_tick(0)
    with pytest.raises(RuntimeError, match="simulated"):
        book(simulated=False).on_candle(minute(1, 1, 1, 1, 1))
