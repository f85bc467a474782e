"""Fill model rule 6: market orders fill `slippage_bps` against them, limit orders never;
the simulated book (backtests) and the paper broker apply the same rule."""

from __future__ import annotations

import asyncio

import pytest

from live.brokers import BrokerOrder, BrokerReport, OrderFilledReport, PaperBroker, PaperConfig
from tradepipe.costs import PAPER_COSTS, TradingCosts
from tradepipe.domain import Candle, Trade
from tradepipe.enums import ExitReason, OrderType, Side
from tradepipe.orders import (
    EntryRequest,
    FeeSchedule,
    InvalidOrderError,
    OrderFilled,
    PositionBook,
    PositionClosed,
    market_fill_price,
)
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")
FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)
BPS = 10.0  # 0.1 %: large enough that a missed or doubled slip shows in the prices


def minute(index: int, open_: float, high: float, low: float, close: float) -> Candle:
    return Candle("BTCUSDT", MINUTE, index * 60_000, open_, high, low, close, 1.0)


def request(order_type: OrderType = OrderType.MARKET, **changes: object) -> EntryRequest:
    values: dict[str, object] = {
        "order_type": order_type,
        "capital": 1_000.0,
        "take_profit_pct": 5.0,
        "stop_loss_pct": 5.0,
        "max_holding_ms": 10 * 60_000,
    }
    return EntryRequest(**(values | changes))  # type: ignore[arg-type]


def fills_of(events: tuple[OrderFilled | object, ...]) -> list[OrderFilled]:
    return [event for event in events if isinstance(event, OrderFilled)]


def entered(slippage_bps: float) -> tuple[PositionBook, OrderFilled]:
    book = PositionBook("bot1", "BTCUSDT", fees=FEES, slippage_bps=slippage_bps)
    book.submit_entry(request(), time_ms=60_000)
    [fill] = fills_of(book.on_candle(minute(1, 100, 101, 99, 100)))
    return book, fill


def test_the_rule_moves_a_buy_up_and_a_sell_down() -> None:
    assert market_fill_price(Side.BUY, 100.0, BPS) == pytest.approx(100.1)
    assert market_fill_price(Side.SELL, 100.0, BPS) == pytest.approx(99.9)
    assert market_fill_price(Side.BUY, 100.0, 0.0) == 100.0


def test_a_market_entry_pays_the_slip_and_gets_fewer_coins() -> None:
    book, fill = entered(BPS)
    assert fill.price == pytest.approx(100.1)
    assert fill.quantity == pytest.approx(1_000.0 / 100.1)
    assert fill.fee == pytest.approx(1_000.0 * 0.002)
    [position] = book.positions
    # barriers come from the price actually paid, as they do live
    assert position.take_profit_price == pytest.approx(100.1 * 1.05)


def test_no_slippage_fills_at_the_open_exactly() -> None:
    _, fill = entered(0.0)
    assert (fill.price, fill.quantity) == (100.0, 10.0)


def test_a_stop_loss_sells_below_its_stop() -> None:
    book, _ = entered(BPS)
    [position] = book.positions
    stop = position.stop_loss_price
    assert stop is not None
    events = book.on_candle(minute(2, 100, 100.5, 90, 91))
    [exit_fill] = fills_of(events)
    [close] = [event for event in events if isinstance(event, PositionClosed)]
    assert close.position.exit_reason is ExitReason.STOP_LOSS
    assert exit_fill.price == pytest.approx(stop * (1 - BPS / 10_000))


def test_a_timeout_exit_is_a_market_sell_and_slips() -> None:
    book, _ = entered(BPS)
    events = book.on_candle(minute(11, 100, 100.2, 99.8, 100))
    [exit_fill] = fills_of(events)
    assert exit_fill.price == pytest.approx(100 * (1 - BPS / 10_000))


def test_a_take_profit_is_a_limit_and_does_not_slip() -> None:
    book, _ = entered(BPS)
    [position] = book.positions
    target = position.take_profit_price
    assert target is not None
    [exit_fill] = fills_of(book.on_candle(minute(2, 100, 110, 100, 108)))
    assert exit_fill.price == target


def test_a_limit_entry_does_not_slip_marketable_or_resting() -> None:
    book = PositionBook("bot1", "BTCUSDT", fees=FEES, slippage_bps=BPS)
    limit = request(OrderType.LIMIT, limit_price=101.0, maker_timeout_ms=5 * 60_000)
    book.submit_entry(limit, time_ms=60_000)
    [fill] = fills_of(book.on_candle(minute(1, 100, 101, 99, 100)))
    assert fill.price == 100.0  # marketable: at the open it met, as taker, unslipped


def test_bad_slippage_is_refused() -> None:
    with pytest.raises(ValueError, match="slippage_bps"):
        PositionBook("bot1", "BTCUSDT", slippage_bps=-1.0)
    with pytest.raises(InvalidOrderError, match="slippage_bps"):
        TradingCosts(slippage_bps=float("nan"))


def test_the_book_keeps_its_slippage_across_a_save() -> None:
    book, _ = entered(BPS)
    assert PositionBook.from_dict(book.to_dict()).slippage_bps == BPS


def test_the_paper_broker_and_the_backtest_book_slip_alike() -> None:
    """The same market buy meeting the same price fills at the same price in both."""
    reports: list[BrokerReport] = []
    paper = PaperBroker(PaperConfig(BPS, FEES), clock=lambda: 0)
    paper.bind(reports.append)
    order = BrokerOrder("bot1-1-en", "BTCUSDT", Side.BUY, OrderType.MARKET, None, None, 1_000.0)
    asyncio.run(paper.place(order))
    paper.on_trade(Trade("BTCUSDT", 60_000, 100.0, 1.0, Side.BUY, 1))
    [paper_fill] = [report for report in reports if isinstance(report, OrderFilledReport)]
    _, book_fill = entered(BPS)
    assert paper_fill.price == book_fill.price
    assert paper_fill.quantity == book_fill.quantity
    assert paper_fill.fee == book_fill.fee


def test_paper_defaults_are_the_kernels_costs() -> None:
    config = PaperConfig()
    assert (config.slippage_bps, config.fees) == (PAPER_COSTS.slippage_bps, PAPER_COSTS.fees)
