"""Venue protection through the ccxt broker and the exchange simulator: a take-profit that
carries its position's stop goes out as an OCO, the stop leg's fill is reported under its
own id with the venue's price and fee, a cancel removes both legs, and a restarted broker
finds protection in place, re-places it when it is missing, or reports the stop that
filled while it was away."""

from __future__ import annotations

from decimal import Decimal

import pytest

from live.brokers import (
    BrokerOrder,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
)
from live.replay.exchange import SimulatedAccount
from tests.brokers.helpers import SYMBOL, Aio, Venue, account, trade, venue
from tradepipe.domain import Side
from tradepipe.enums import OrderType
from tradepipe.orders import Liquidity

QUANTITY = 0.002


def take_profit(stop: float | None = 48_000.0, order_id: str = "alpha-1-tp") -> BrokerOrder:
    return BrokerOrder(
        order_id, SYMBOL, Side.SELL, OrderType.LIMIT, 52_000.0, QUANTITY, stop_price=stop
    )


def holding() -> SimulatedAccount:
    funded = account()
    funded.deposit("BTC", QUANTITY)
    return funded


def statuses(v: Venue) -> dict[str, str]:
    return {o.client_order_id: o.status for o in v.exchange.account.orders.values()}


def test_a_take_profit_with_its_stop_rests_as_an_oco_whose_stop_fill_is_the_exit(
    aio: Aio,
) -> None:
    async def scenario() -> None:
        async with venue(holding()) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())
            [placed] = v.exchange.oco_placements()
            assert placed.params["belowStopPrice"] == "48000"
            assert placed.params["belowPrice"] == "47520"  # 1 % beyond the stop
            assert placed.params["aboveClientOrderId"] == "alpha-1-tp"
            assert statuses(v) == {"alpha-1-tp": "NEW", "alpha-1-vs": "NEW"}
            assert [r.client_order_id for r in v.of(OrderAcceptedReport)] == ["alpha-1-tp"]
            # both legs are working orders of this position: nothing strange at the venue
            assert {o.client_order_id for o in await v.broker.open_orders()} == {
                "alpha-1-tp",
                "alpha-1-vs",
            }
            v.market(47_900.0, 1)  # the market falls through the stop
            await aio.eventually(lambda: v.of(OrderFilledReport), "the stop's fill")
            [fill] = v.of(OrderFilledReport)
            assert fill.client_order_id == "alpha-1-vs" and fill.complete
            assert fill.price == 47_900.0 and fill.quantity == pytest.approx(QUANTITY)
            assert fill.fee == pytest.approx(47_900.0 * QUANTITY * 0.001)
            assert fill.liquidity is Liquidity.TAKER
            assert not v.of(OrderCancelledReport)  # the take-profit expired with it, quietly
            assert statuses(v) == {"alpha-1-tp": "EXPIRED", "alpha-1-vs": "FILLED"}

    aio.run(scenario())


def test_cancelling_a_protected_take_profit_removes_both_legs(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(holding()) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())
            await v.broker.cancel(SYMBOL, "alpha-1-tp")
            assert v.of(OrderCancelledReport, "alpha-1-tp")
            assert statuses(v) == {"alpha-1-tp": "CANCELED", "alpha-1-vs": "CANCELED"}
            assert v.exchange.account.balances["BTC"] == [Decimal("0.002"), Decimal("0")]
            v.market(47_000.0, 1)  # nothing rests any more: nothing sells
            assert v.exchange.account.trades == []

    aio.run(scenario())


def test_without_protection_or_a_stop_the_take_profit_goes_alone(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(holding(), protection=False) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())
            assert statuses(v) == {"alpha-1-tp": "NEW"} and not v.exchange.oco_placements()

    aio.run(scenario())


def test_an_oco_the_venue_refuses_falls_back_to_the_take_profit_alone(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(holding()) as v:
            v.market(47_000.0)  # already below the stop: Binance refuses the price relation
            await v.broker.place(take_profit())
            assert statuses(v) == {"alpha-1-tp": "NEW"}
            assert v.of(OrderAcceptedReport, "alpha-1-tp")

    aio.run(scenario())


def test_a_restarted_broker_re_places_missing_protection_and_keeps_what_is_there(
    aio: Aio,
) -> None:
    async def scenario() -> None:
        async with venue(holding(), protection=False) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())  # rests alone, unprotected
            protected = v.new_broker()
            try:
                await protected.place(take_profit())  # the engine re-sends it at start
                assert statuses(v)["alpha-1-vs"] == "NEW"
                tp_legs = v.exchange.orders_with_id("alpha-1-tp")
                assert [o.status for o in tp_legs] == ["CANCELED", "NEW"]
                assert tp_legs[-1].order_list_id >= 0
                again = v.new_broker()
                try:
                    await again.place(take_profit())  # protected already: adopted
                finally:
                    await again.close()
                assert len(v.exchange.oco_placements()) == 1
                # the list cancelled while the engine was away: placed once more
                v.exchange.account.cancel({"symbol": SYMBOL, "origClientOrderId": "alpha-1-vs"}, 0)
                third = v.new_broker()
                try:
                    await third.place(take_profit())
                finally:
                    await third.close()
                assert len(v.exchange.oco_placements()) == 2
                assert [o.status for o in v.exchange.orders_with_id("alpha-1-vs")] == [
                    "CANCELED",
                    "NEW",
                ]
            finally:
                await protected.close()

    aio.run(scenario())


def test_a_stop_that_filled_while_the_broker_was_away_is_reported_at_restart(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(holding()) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())
            await v.broker.close()
            v.exchange.on_trade(trade(47_950.0, 1))  # the stop fills, the broker away
            v.reports.clear()
            restarted = v.new_broker()
            try:
                await restarted.place(take_profit())  # the book still thinks it rests
            finally:
                await restarted.close()
            [fill] = v.of(OrderFilledReport)
            assert (fill.client_order_id, fill.price) == ("alpha-1-vs", 47_950.0)
            assert len(v.exchange.oco_placements()) == 1  # nothing placed again

    aio.run(scenario())


def test_a_stop_gapped_past_its_limit_is_followed_until_it_fills(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(holding()) as v:
            v.market(50_000.0)
            await v.broker.place(take_profit())
            v.market(47_000.0, 1)  # through the stop and its limit (47,520): it rests
            await aio.eventually(
                lambda: v.of(OrderAcceptedReport, "alpha-1-vs"), "the triggered stop"
            )
            assert not v.of(OrderFilledReport) and not v.of(OrderCancelledReport)
            v.market(47_600.0, 2)  # back at its limit
            await aio.eventually(lambda: v.of(OrderFilledReport, "alpha-1-vs"), "its fill")
            [fill] = v.of(OrderFilledReport)
            assert fill.price == 47_520.0 and fill.liquidity is Liquidity.MAKER

    aio.run(scenario())
