"""A live book whose take-profit rests at the venue with a stop-loss leg (an OCO): the
stop leg's reports take over the position's exit, with the venue's price and fee."""

from __future__ import annotations

import pytest

from tests.orders.test_book_live import active_book, kinds
from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType
from tradepipe.orders import (
    Anomaly,
    InvalidOrderError,
    Liquidity,
    PositionClosed,
    parse_client_order_id,
    venue_stop_order_id,
)


def test_venue_stop_ids_follow_their_take_profit_and_are_never_the_engines_own() -> None:
    assert venue_stop_order_id("bot1-1-tp") == "bot1-1-vs"
    assert venue_stop_order_id("bot1-7-tp-2") == "bot1-7-vs-2"
    assert parse_client_order_id("bot1-7-vs-2") == ("bot1", 7, OrderRole.STOP_LOSS, 2)
    with pytest.raises(InvalidOrderError, match="not a take-profit"):
        venue_stop_order_id("bot1-1-sl")


def test_a_venue_stop_fill_closes_the_position_as_a_stop_loss_at_the_venues_price() -> None:
    positions = active_book()
    positions.on_accepted("bot1-1-tp", 1_003)
    events = positions.on_fill(
        "bot1-1-vs", 89.5, 2_000, quantity=10.0, fee=0.9, liquidity=Liquidity.TAKER
    )
    assert kinds(events) == ["order_cancelled", "order_filled", "position_closed"]
    closed = next(e.position for e in events if isinstance(e, PositionClosed))
    assert closed.exit_reason is ExitReason.STOP_LOSS
    assert closed.exit_price == 89.5 and closed.exit_fee == 0.9
    take_profit, stop = closed.exits
    assert take_profit.status is OrderStatus.EXPIRED
    assert (stop.client_order_id, stop.role, stop.order_type) == (
        "bot1-1-vs",
        OrderRole.STOP_LOSS,
        OrderType.LIMIT,
    )
    assert positions.positions == ()


def test_a_triggered_venue_stop_stops_the_engine_exiting_on_its_own() -> None:
    positions = active_book()
    assert kinds(positions.on_accepted("bot1-1-vs", 1_500)) == ["order_cancelled"]
    position = positions.positions[0]
    assert position.pending_exit is ExitReason.STOP_LOSS
    assert positions.on_tick(1_600, 80.0) == ()  # below the stop: the venue's stop works
    events = positions.on_fill("bot1-1-vs", 80.0, 1_700, quantity=4.0, complete=False)
    assert kinds(events) == ["order_filled"]
    events = positions.on_fill("bot1-1-vs", 79.0, 1_800, quantity=6.0)
    assert kinds(events) == ["order_filled", "position_closed"]


def test_a_venue_stop_beating_the_engines_own_cancel_is_the_only_exit() -> None:
    positions = active_book()
    positions.on_accepted("bot1-1-tp", 1_003)
    positions.on_tick(1_500, 89.0)  # the engine's stop: it asks for the take-profit's cancel
    assert positions.positions[0].exits[0].cancel_requested
    events = positions.on_fill("bot1-1-vs", 89.5, 1_501)
    assert kinds(events)[-1] == "position_closed"
    # the take-profit's late cancel confirmation changes nothing and sells nothing
    assert positions.on_cancelled("bot1-1-tp", 1_502) == ()


def test_a_stop_report_of_no_take_profit_is_an_anomaly() -> None:
    positions = active_book()
    events = positions.on_fill("bot1-1-vs-3", 89.5, 1_501)
    assert [type(e) for e in events] == [Anomaly]
