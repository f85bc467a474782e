"""The exchange simulator's OCO order lists, spoken by hand: a take-profit (LIMIT_MAKER)
and a stop-loss-limit sharing one quantity, the stop triggered by the market it is fed,
one leg expiring the other, cancels of a leg or the list, and list queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.brokers.helpers import SYMBOL, Aio, trade
from tests.exchange.test_simulator import Client, aio, simulator

__all__ = ["aio"]  # the fixture


async def holding(client: Client, exchange: Any, btc: str = "0.002") -> None:
    """Buy `btc` at 50,000 so there is something to protect."""
    exchange.on_trade(trade(50_000.0))
    exchange.account.deposit("BTC", btc)


async def oco(client: Client, **changes: Any) -> tuple[int, Any]:
    params = {
        "symbol": SYMBOL, "side": "SELL", "quantity": "0.002", "listClientOrderId": "a-1-tp-oco",
        "aboveType": "LIMIT_MAKER", "abovePrice": "52000", "aboveClientOrderId": "a-1-tp",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "48000", "belowPrice": "47500",
        "belowTimeInForce": "GTC", "belowClientOrderId": "a-1-vs",
    }  # fmt: skip
    status, body, _ = await client.signed("POST", "/api/v3/orderList/oco", {**params, **changes})
    return status, body


def legs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {report["clientOrderId"]: report for report in body["orderReports"]}


def test_an_oco_rests_both_legs_on_one_hold_and_its_stop_fills_when_the_market_falls(
    aio: Aio,
) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            await holding(client, exchange)
            status, body = await oco(client)
            assert status == 200, body
            assert body["contingencyType"] == "OCO" and body["listOrderStatus"] == "EXECUTING"
            placed = legs(body)
            assert placed["a-1-tp"]["type"] == "LIMIT_MAKER"
            assert placed["a-1-vs"]["type"] == "STOP_LOSS_LIMIT"
            assert placed["a-1-vs"]["stopPrice"] == "48000.00000000"
            assert {r["orderListId"] for r in placed.values()} == {body["orderListId"]}
            # one quantity held once, for both legs
            assert exchange.account.balances["BTC"] == [Decimal("0.000"), Decimal("0.002")]
            _, opened, _ = await client.signed("GET", "/api/v3/openOrders", {"symbol": SYMBOL})
            assert {o["clientOrderId"] for o in opened} == {"a-1-tp", "a-1-vs"}
            exchange.on_trade(trade(48_500.0, 1))  # above the stop: nothing happens
            exchange.on_trade(trade(47_900.0, 2))  # through the stop, above its limit
            _, stop, _ = await client.signed(
                "GET", "/api/v3/order", {"symbol": SYMBOL, "origClientOrderId": "a-1-vs"}
            )
            assert stop["status"] == "FILLED" and stop["executedQty"] == "0.00200000"
            _, take_profit, _ = await client.signed(
                "GET", "/api/v3/order", {"symbol": SYMBOL, "origClientOrderId": "a-1-tp"}
            )
            assert take_profit["status"] == "EXPIRED"
            _, mine, _ = await client.signed("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
            assert [(t["price"], t["isMaker"], t["orderId"]) for t in mine] == [
                ("47900.00000000", False, stop["orderId"])
            ]
            assert exchange.account.balances["BTC"] == [Decimal("0.000"), Decimal("0.000")]
            assert exchange.account.balances["USDT"][0] == Decimal("1000") + Decimal(
                "95.8"
            ) * Decimal("0.999")
            _, listed, _ = await client.signed(
                "GET", "/api/v3/orderList", {"symbol": SYMBOL, "orderListId": body["orderListId"]}
            )
            assert listed["listOrderStatus"] == "ALL_DONE"
            assert [o["clientOrderId"] for o in listed["orders"]] == ["a-1-tp", "a-1-vs"]

    aio.run(scenario())


def test_the_take_profit_leg_fills_as_maker_and_expires_the_stop(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            await holding(client, exchange)
            await oco(client)
            exchange.on_trade(trade(52_100.0, 1))
            found = {o.client_order_id: o for o in exchange.account.orders.values()}
            assert (found["a-1-tp"].status, found["a-1-vs"].status) == ("FILLED", "EXPIRED")
            assert exchange.account.trades[-1].maker
            assert exchange.account.balances["BTC"] == [Decimal("0.000"), Decimal("0.000")]
            exchange.on_trade(trade(47_000.0, 2))  # the expired stop never triggers
            assert len(exchange.account.trades) == 1

    aio.run(scenario())


def test_a_stop_that_gaps_through_its_limit_rests_until_the_market_comes_back(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            await holding(client, exchange)
            await oco(client)
            exchange.on_trade(trade(47_000.0, 1))  # through the stop and below its limit
            found = {o.client_order_id: o for o in exchange.account.orders.values()}
            assert (found["a-1-vs"].status, found["a-1-tp"].status) == ("NEW", "EXPIRED")
            exchange.on_trade(trade(47_600.0, 2))  # back at the limit: a maker fill there
            assert found["a-1-vs"].status == "FILLED"
            assert exchange.account.trades[-1].price == Decimal("47500")

    aio.run(scenario())


def test_cancelling_a_leg_or_the_list_cancels_both(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            await holding(client, exchange)
            _, body = await oco(client)
            status, cancelled, _ = await client.signed(
                "DELETE", "/api/v3/order", {"symbol": SYMBOL, "origClientOrderId": "a-1-tp"}
            )
            assert status == 200 and cancelled["status"] == "CANCELED"
            assert {o.status for o in exchange.account.orders.values()} == {"CANCELED"}
            assert exchange.account.balances["BTC"] == [Decimal("0.002"), Decimal("0.000")]
            # the ids of finished legs may be used again, as on Binance
            _, again = await oco(client, listClientOrderId="a-1-tp-oco2")
            status, gone, _ = await client.signed(
                "DELETE",
                "/api/v3/orderList",
                {"symbol": SYMBOL, "orderListId": again["orderListId"]},
            )
            assert status == 200 and gone["listOrderStatus"] == "ALL_DONE"
            assert {r["status"] for r in gone["orderReports"]} == {"CANCELED"}
            status, refused, _ = await client.signed(
                "DELETE",
                "/api/v3/orderList",
                {"symbol": SYMBOL, "orderListId": body["orderListId"]},
            )
            assert (status, refused["code"]) == (400, -2011)

    aio.run(scenario())


def test_bad_oco_requests_are_refused_with_binances_messages(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            await holding(client, exchange)
            status, body = await oco(client, belowStopPrice="50500")  # above the market
            assert (status, body["msg"]) == (
                400,
                "The relationship of the prices for the orders is not correct.",
            )
            _, body = await oco(client, aboveType="LIMIT")
            assert body["msg"] == "Invalid orderType."
            _, body = await oco(client, belowStopPrice="48000.005")
            assert body["msg"] == "Filter failure: PRICE_FILTER"
            _, body = await oco(client, quantity="0.004")
            assert body["code"] == -2010 and "insufficient balance" in body["msg"]
            assert exchange.account.orders == {} and exchange.account.order_lists == {}
            _, body, _ = await client.signed(
                "GET", "/api/v3/orderList", {"symbol": SYMBOL, "orderListId": "99"}
            )
            assert body["code"] == -2011

    aio.run(scenario())
