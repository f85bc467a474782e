"""Trailing stops and strategy exits in the state machine: one ratchet rule for simulated
and live books, the stop's reason, the state kept across a restart."""

from __future__ import annotations

import pytest

from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.enums import ExitReason, OrderRole, PositionStatus
from tradepipe.orders import (
    EntryRequest,
    InvalidOrderError,
    OrderCancelRequested,
    OrderPlaced,
    PositionBook,
    PositionClosed,
)
from tradepipe.orders.trailing import effective_stop
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")
T0 = 1_704_067_200_000
CONFIG = BotConfig(
    capital_per_trade=1_000,
    take_profit_pct=10,
    stop_loss_pct=5,
    max_holding_seconds=3_600,
    maker_order_timeout_seconds=60,
    trailing_stop_pct=2.0,
)


def candle(index: int, open_: float, high: float, low: float, close: float) -> Candle:
    start = T0 + index * 60_000
    return Candle("BTCUSDT", MINUTE, start, open_, high, low, close, 1.0, 0.5, 1)


RISING = [candle(1, 100, 104, 99, 103), candle(2, 103, 108, 102.5, 107)]


def test_the_trail_ratchets_on_closed_candles_alike_in_simulated_and_live_books() -> None:
    simulated = PositionBook("bot1", "BTCUSDT")
    simulated.submit_entry(EntryRequest.from_config(CONFIG), T0 + 60_000)
    live = PositionBook("bot1", "BTCUSDT", simulated=False)
    live.submit_entry(EntryRequest.from_config(CONFIG), T0 + 60_000)
    live.on_fill("bot1-1-en", 100.0, T0 + 60_000)  # filled at candle 1's open
    assert live.positions[0].trailing_stop_price == 98.0
    for bar in RISING:
        simulated.on_candle(bar)
        assert live.on_closed_candle(bar)
    expected = 108 * (1 - 2.0 / 100)
    assert simulated.positions[0].trailing_stop_price == expected
    assert live.positions[0].trailing_stop_price == expected
    assert not live.on_closed_candle(candle(3, 107, 107.5, 106.5, 107))  # lower: stays
    assert effective_stop(live.positions[0]) == (expected, ExitReason.TRAILING_STOP)

    assert live.on_tick(T0 + 241_000, 106.0) == ()
    events = live.on_tick(T0 + 242_000, expected)
    assert [type(e) for e in events] == [OrderCancelRequested]
    events = live.on_cancelled("bot1-1-tp", T0 + 242_001)
    (exit_order,) = [e.order for e in events if isinstance(e, OrderPlaced)]
    assert exit_order.role is OrderRole.STOP_LOSS
    (closed,) = [e for e in live.on_fill(exit_order.client_order_id, 105.8, T0 + 242_002)
                 if isinstance(e, PositionClosed)]  # fmt: skip
    assert closed.position.exit_reason is ExitReason.TRAILING_STOP


def test_a_trail_looser_than_the_stop_loss_leaves_the_stop_loss_in_charge() -> None:
    loose = CONFIG.model_copy(update={"trailing_stop_pct": 8.0})
    book = PositionBook("bot1", "BTCUSDT")
    book.submit_entry(EntryRequest.from_config(loose), T0 + 60_000)
    book.on_candle(candle(1, 100, 101, 99, 100))
    assert effective_stop(book.positions[0]) == (95.0, ExitReason.STOP_LOSS)
    (closed,) = [
        e for e in book.on_candle(candle(2, 100, 100, 94, 95)) if isinstance(e, PositionClosed)
    ]
    assert closed.position.exit_reason is ExitReason.STOP_LOSS


def test_an_inside_limit_fill_does_not_ratchet_on_its_own_candle() -> None:
    book = PositionBook("bot1", "BTCUSDT")
    book.submit_entry(EntryRequest.from_config(CONFIG, limit_price=100.0), T0 + 60_000)
    book.on_candle(candle(1, 101, 110, 99.5, 101))  # filled inside at 100; high maybe before
    assert book.positions[0].trailing_stop_price == 98.0
    book.on_candle(candle(2, 101, 103, 100.5, 102))
    assert book.positions[0].trailing_stop_price == 103 * 0.98


def test_the_trail_survives_a_restart_and_old_state_loads() -> None:
    book = PositionBook("bot1", "BTCUSDT", simulated=False)
    book.submit_entry(EntryRequest.from_config(CONFIG), T0)
    book.on_fill("bot1-1-en", 100.0, T0)
    book.on_closed_candle(candle(0, 100, 105, 99, 104))
    state = book.to_dict()
    again = PositionBook.from_dict(state)
    assert again.positions == book.positions
    for saved in state["positions"]:  # a book saved before trailing stops existed
        del saved["trailing_stop_price"], saved["request"]["trailing_stop_pct"]
    old = PositionBook.from_dict(state)
    assert old.positions[0].trailing_stop_price is None
    assert effective_stop(old.positions[0]) == (95.0, ExitReason.STOP_LOSS)


def test_a_strategy_exit_on_a_live_book_cancels_the_take_profit_then_sells_at_market() -> None:
    book = PositionBook("bot1", "BTCUSDT", simulated=False)
    book.submit_entry(EntryRequest.from_config(CONFIG), T0)
    book.on_fill("bot1-1-en", 100.0, T0)
    events = book.close_position(1, T0 + 5_000, ExitReason.STRATEGY)
    assert [type(e) for e in events] == [OrderCancelRequested]
    (placed,) = [
        e for e in book.on_cancelled("bot1-1-tp", T0 + 5_001) if isinstance(e, OrderPlaced)
    ]
    assert placed.order.role is OrderRole.MARKET_EXIT
    (closed,) = [e for e in book.on_fill(placed.order.client_order_id, 101.0, T0 + 5_002)
                 if isinstance(e, PositionClosed)]  # fmt: skip
    assert closed.position.exit_reason is ExitReason.STRATEGY
    assert closed.position.status is PositionStatus.CLOSED and closed.position.exit_price == 101


@pytest.mark.parametrize("pct", [0.0, -1.0, 100.0, float("nan")])
def test_a_bad_trailing_stop_is_refused_naming_the_field(pct: float) -> None:
    with pytest.raises(InvalidOrderError, match="trailing_stop_pct"):
        EntryRequest.from_config(CONFIG, trailing_stop_pct=pct)
