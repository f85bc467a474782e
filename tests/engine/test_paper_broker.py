"""The paper broker's fill rules against public trades, and its venue behaviour (duplicate
ids, cancels racing fills, open orders for reconciliation)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from live.brokers import (
    BrokerOrder,
    BrokerReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    OrderRejectedReport,
    PaperBroker,
    PaperConfig,
)
from tradepipe.domain import Side, Trade
from tradepipe.enums import OrderRole, OrderStatus, OrderType
from tradepipe.orders import FeeSchedule, Liquidity, OrderState

FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)


def broker(slippage_bps: float = 10.0) -> tuple[PaperBroker, list[BrokerReport]]:
    reports: list[BrokerReport] = []
    paper = PaperBroker(PaperConfig(slippage_bps, FEES), clock=lambda: 5_000)
    paper.bind(reports.append)
    return paper, reports


def trade(price: float, time_ms: int = 10_000, symbol: str = "BTCUSDT") -> Trade:
    return Trade(symbol, time_ms, price, 1.0, Side.BUY, time_ms)


def order(
    order_id: str = "bot-1-en",
    *,
    side: Side = Side.BUY,
    order_type: OrderType = OrderType.MARKET,
    price: float | None = None,
    quantity: float | None = None,
    quote: float | None = 1_000.0,
) -> BrokerOrder:
    if quantity is not None:
        quote = None
    return BrokerOrder(order_id, "BTCUSDT", side, order_type, price, quantity, quote)


def fills(reports: list[BrokerReport]) -> list[OrderFilledReport]:
    return [report for report in reports if isinstance(report, OrderFilledReport)]


def test_market_buy_fills_at_the_next_trade_plus_adverse_slippage() -> None:
    paper, reports = broker(slippage_bps=10.0)
    asyncio.run(paper.place(order()))
    assert reports == [OrderAcceptedReport("bot-1-en", 5_000, "paper-bot-1-en")]
    paper.on_trade(trade(100.0, 10_000))
    [fill] = fills(reports)
    assert fill.price == pytest.approx(100.1) and fill.time_ms == 10_000
    assert fill.quantity == pytest.approx(1_000.0 / 100.1)  # quote-sized: capital / fill price
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == pytest.approx(1_000.0 * 0.002)
    assert fill.fill_id == "paper:bot-1-en:1" and fill.complete
    paper.on_trade(trade(90.0))
    assert len(fills(reports)) == 1  # filled once, and gone from the book
    assert asyncio.run(paper.open_orders()) == []


def test_market_sell_gets_less() -> None:
    paper, reports = broker(slippage_bps=10.0)
    asyncio.run(paper.place(order("bot-1-sl", side=Side.SELL, quantity=2.0)))
    paper.on_trade(trade(100.0))
    [fill] = fills(reports)
    assert fill.price == pytest.approx(99.9) and fill.quantity == 2.0


def test_resting_limit_buy_fills_at_its_limit_when_a_trade_prints_at_or_below() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order(order_type=OrderType.LIMIT, price=99.0, quantity=3.0)))
    paper.on_trade(trade(100.0))  # first trade: not marketable, it rests
    paper.on_trade(trade(99.5))
    assert fills(reports) == []
    paper.on_trade(trade(98.0, 12_000))  # through the limit: filled at the limit, as maker
    [fill] = fills(reports)
    assert (fill.price, fill.quantity, fill.liquidity) == (99.0, 3.0, Liquidity.MAKER)
    assert fill.fee == pytest.approx(99.0 * 3.0 * 0.001) and fill.time_ms == 12_000


def test_a_limit_already_through_on_arrival_is_marketable() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order(order_type=OrderType.LIMIT, price=101.0, quantity=1.0)))
    paper.on_trade(trade(100.0))
    [fill] = fills(reports)
    assert (fill.price, fill.liquidity) == (100.0, Liquidity.TAKER)


def test_a_limit_acknowledged_before_a_restart_comes_back_resting() -> None:
    """The same take-profit on a broker that never restarted and on a new one it is sent to
    again after a restart: the market is far through it at the first trade either way."""
    kept, kept_reports = broker()
    take_profit = order("b-1-tp", side=Side.SELL, order_type=OrderType.LIMIT, price=105.0,
                        quantity=1.0)  # fmt: skip
    asyncio.run(kept.place(take_profit))
    kept.on_trade(trade(100.0))  # rests
    kept.on_trade(trade(110.0, 12_000))
    resent, resent_reports = broker()
    state = OrderState(
        client_order_id="b-1-tp", role=OrderRole.TAKE_PROFIT, side=Side.SELL,
        order_type=OrderType.LIMIT, status=OrderStatus.OPEN, placed_at_ms=1_000,
        updated_at_ms=1_000, price=105.0, quantity=1.0,
    )  # fmt: skip
    again = BrokerOrder.from_state("BTCUSDT", state)
    assert again.resting
    asyncio.run(resent.place(again))
    resent.on_trade(trade(110.0, 12_000))
    [before], [after] = fills(kept_reports), fills(resent_reports)
    assert (after.price, after.liquidity) == (before.price, before.liquidity)
    assert (after.price, after.liquidity) == (105.0, Liquidity.MAKER)  # not 110
    # never acknowledged (NEW): it arrives fresh, marketable if already through
    fresh = BrokerOrder.from_state("BTCUSDT", replace(state, status=OrderStatus.NEW))
    assert not fresh.resting


def test_take_profit_limit_sell_fills_when_the_price_reaches_it() -> None:
    paper, reports = broker()
    asyncio.run(
        paper.place(
            order("b-1-tp", side=Side.SELL, order_type=OrderType.LIMIT, price=105.0, quantity=1.0)
        )
    )
    for price in (100.0, 104.9, 105.0):
        paper.on_trade(trade(price))
    [fill] = fills(reports)
    assert (fill.price, fill.liquidity) == (105.0, Liquidity.MAKER)


def test_only_the_orders_symbol_fills_it() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order()))
    paper.on_trade(trade(100.0, symbol="ETHUSDT"))
    assert fills(reports) == []


def test_duplicate_ids_are_ignored_like_a_venue_refusing_a_second_order() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order()))
    asyncio.run(paper.place(order()))
    assert len(asyncio.run(paper.open_orders())) == 1
    paper.on_trade(trade(100.0))
    asyncio.run(paper.place(order()))  # done already: still not a second order
    assert asyncio.run(paper.open_orders()) == []
    assert len(fills(reports)) == 1


def test_cancel_of_a_working_order_and_a_cancel_that_lost_the_race() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order(order_type=OrderType.LIMIT, price=90.0, quantity=1.0)))
    asyncio.run(paper.cancel("BTCUSDT", "bot-1-en"))
    assert isinstance(reports[-1], OrderCancelledReport)
    asyncio.run(paper.place(order("bot-2-en")))
    paper.on_trade(trade(100.0))
    before = len(reports)
    asyncio.run(paper.cancel("BTCUSDT", "bot-2-en"))  # filled first: the fill stands
    assert len(reports) == before
    asyncio.run(paper.cancel("BTCUSDT", "bot-9-en"))  # never held: not working here
    assert isinstance(reports[-1], OrderCancelledReport)


def test_an_order_without_a_usable_size_is_rejected() -> None:
    paper, reports = broker()
    asyncio.run(paper.place(order(quote=None)))
    asyncio.run(paper.place(order("b-2-en", order_type=OrderType.LIMIT, price=None, quantity=1)))
    assert [type(r) for r in reports] == [OrderRejectedReport, OrderRejectedReport]


def test_slippage_is_validated() -> None:
    with pytest.raises(ValueError, match="slippage_bps"):
        PaperConfig(slippage_bps=-1.0)
