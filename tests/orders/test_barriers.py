"""An operator moves an open position's barriers: checked against the market, the stop and
deadline at once, the take-profit replaced through a cancel the venue confirms."""

from __future__ import annotations

import pytest

from tests.orders.test_book_live import active_book, kinds, placed
from tradepipe.enums import ExitReason, OrderRole, OrderStatus
from tradepipe.orders import BarrierError, BarrierMove, PositionBook, PositionClosed


def test_a_moved_stop_loss_applies_at_the_next_tick() -> None:
    book = active_book()  # long at 100, stop at 90
    events = book.move_barriers(1, BarrierMove(stop_loss_price=97.0), 2_000, price=99.0)
    assert kinds(events) == ["barriers_moved"]
    assert book.positions[0].stop_loss_price == 97.0
    assert kinds(book.on_tick(2_100, 98.0)) == []
    leaving = book.on_tick(2_200, 96.5)
    assert kinds(leaving) == ["order_cancel_requested"]
    assert book.positions[0].pending_exit is ExitReason.STOP_LOSS


def test_a_moved_take_profit_is_placed_again_once_the_venue_cancels_the_old_one() -> None:
    book = active_book()
    events = book.move_barriers(1, BarrierMove(take_profit_price=104.0), 2_000, price=101.0)
    assert kinds(events) == ["barriers_moved", "order_cancel_requested"]
    assert book.positions[0].pending_exit is None  # not leaving: only the order moves
    replaced = book.on_cancelled("bot1-1-tp", 2_010)
    assert placed(replaced) == ["bot1-1-tp-2"]
    new = book.positions[0].working_exit(OrderRole.TAKE_PROFIT)
    assert new is not None and new.price == 104.0 and new.status is OrderStatus.NEW
    closed = book.on_fill("bot1-1-tp-2", 104.0, 3_000)
    final = [e for e in closed if isinstance(e, PositionClosed)]
    assert final and final[0].position.exit_reason is ExitReason.TAKE_PROFIT
    assert final[0].position.exit_price == 104.0


def test_a_moved_deadline_times_the_position_out() -> None:
    book = active_book()
    book.move_barriers(1, BarrierMove(expires_at_ms=2_500), 2_000, price=100.0)
    assert kinds(book.on_tick(2_400, 100.0)) == []
    assert book.on_tick(2_500, 100.0)  # cancel of the take-profit, then the timeout exit
    assert book.positions[0].pending_exit is ExitReason.TIMEOUT


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (BarrierMove(stop_loss_price=101.0), "stop-loss of a long must be below the current"),
        (BarrierMove(take_profit_price=99.0), "take-profit of a long must be above the current"),
        (BarrierMove(take_profit_price=80.0), "must be above the stop-loss"),
        (BarrierMove(stop_loss_price=float("nan")), "positive number"),
        (BarrierMove(), "give a new take-profit"),
    ],
)
def test_a_barrier_on_the_wrong_side_is_refused_and_changes_nothing(
    move: BarrierMove, message: str
) -> None:
    book = active_book()
    before = book.to_dict()
    with pytest.raises(BarrierError, match=message):
        book.move_barriers(1, move, 2_000, price=100.0)
    assert book.to_dict() == before


def test_only_an_active_position_has_barriers_to_move() -> None:
    book = PositionBook("bot1", "BTCUSDT", simulated=False)
    with pytest.raises(BarrierError, match="no open position 1"):
        book.move_barriers(1, BarrierMove(stop_loss_price=95.0), 1_000)
    from tests.orders.test_book_live import request

    book.submit_entry(request(), 1_000)
    with pytest.raises(BarrierError, match="pending: only an active position"):
        book.move_barriers(1, BarrierMove(stop_loss_price=95.0), 1_001)


def test_an_operator_close_finishes_with_its_own_reason() -> None:
    book = active_book()
    book.close_position(1, 2_000, ExitReason.OPERATOR)
    book.on_cancelled("bot1-1-tp", 2_001)
    closed = book.on_fill("bot1-1-mx", 99.0, 2_002)
    final = [e for e in closed if isinstance(e, PositionClosed)]
    assert final[0].position.exit_reason is ExitReason.OPERATOR


def test_a_simulated_book_replaces_its_take_profit_at_once_and_fills_it_there() -> None:
    from tests.orders.test_book_simulated import book, market, minute

    positions = book()
    positions.submit_entry(market(), time_ms=60_000)
    positions.on_candle(minute(1, 100, 101, 99, 100))  # long at 100, take-profit at 110
    events = positions.move_barriers(1, BarrierMove(take_profit_price=103.0), 120_000, 100.5)
    assert kinds(events) == ["barriers_moved", "order_cancelled", "order_placed"]
    assert placed(events) == ["bot1-1-tp-2"]
    done = positions.on_candle(minute(2, 100.5, 103.5, 100.2, 103.2))
    [final] = [e for e in done if isinstance(e, PositionClosed)]
    assert (final.position.exit_reason, final.position.exit_price) == (
        ExitReason.TAKE_PROFIT,
        103.0,
    )
