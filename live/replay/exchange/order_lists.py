"""Order lists of the simulated account: Binance spot's OCO (one-cancels-the-other).

`POST /api/v3/orderList/oco` places two legs that share one quantity and one hold on the
account: an `above` leg and a `below` leg. A sell protecting a long position is a
`LIMIT_MAKER` above (the take-profit) and a `STOP_LOSS_LIMIT` below (the stop); a buy is
the mirror. What is checked, with Binance's codes and messages:
- leg types: one of them `LIMIT_MAKER`, the other `STOP_LOSS_LIMIT` (the only pair the
  simulator speaks): -1116 "Invalid orderType." otherwise;
- the prices' relation to the last trade (a sell: limit above > last > stop below, a buy
  the mirror): -2010 "The relationship of the prices for the orders is not correct.";
- each leg's filters (tick, lot, notional) and the balance, as for a single order.

Matching (in `SimulatedAccount.on_trade`): a stop leg is triggered by a trade at or through
its `stopPrice` and then works as a limit order at its `price` (filled at once as taker
when the market is at or better than the limit, else resting); the limit-maker leg fills
at its limit as maker. The first leg to trigger or trade expires the other (`EXPIRED`), and
cancelling either leg (or the list) cancels both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from live.replay.exchange.errors import BinanceError

if TYPE_CHECKING:
    from live.replay.exchange.account import SimOrder, SimulatedAccount

__all__ = ["SimOrderList", "cancel_list", "expire_siblings", "find_list", "new_oco", "stop_reached"]

LEG_TYPES = {"LIMIT_MAKER", "STOP_LOSS_LIMIT"}


@dataclass(slots=True)
class SimOrderList:
    order_list_id: int
    list_client_order_id: str
    symbol: str
    order_ids: tuple[int, ...]
    time_ms: int

    def view(self, account: SimulatedAccount, *, reports: bool = False) -> dict[str, Any]:
        """The list as GET /api/v3/orderList shows it (with `orderReports` as placing and
        cancelling answer)."""
        legs = [account.orders[order_id] for order_id in self.order_ids]
        done = not any(leg.is_open for leg in legs)
        body: dict[str, Any] = {
            "orderListId": self.order_list_id, "contingencyType": "OCO",
            "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
            "listOrderStatus": "ALL_DONE" if done else "EXECUTING",
            "listClientOrderId": self.list_client_order_id, "transactionTime": self.time_ms,
            "symbol": self.symbol,
            "orders": [
                {"symbol": leg.symbol, "orderId": leg.order_id,
                 "clientOrderId": leg.client_order_id}
                for leg in legs
            ],
        }  # fmt: skip
        if reports:
            body["orderReports"] = [leg.view() for leg in legs]
        return body


def new_oco(account: SimulatedAccount, params: dict[str, str], now_ms: int) -> SimOrderList:
    """Place both legs (checked as Binance checks them) and hold the quantity once."""
    rules = account.rules(params.get("symbol", ""))
    side = params.get("side", "")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1100, "Illegal characters found in parameter 'side'.")
    kinds = {params.get("aboveType"), params.get("belowType")}
    if kinds != LEG_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    legs: list[SimOrder] = []
    for where in ("above", "below"):
        leg_params = {
            "symbol": rules.symbol,
            "side": side,
            "type": params[f"{where}Type"],
            "quantity": params.get("quantity", ""),
            "price": params.get(f"{where}Price", ""),
            "stopPrice": params.get(f"{where}StopPrice", ""),
            "timeInForce": params.get(f"{where}TimeInForce", "GTC"),
            "newClientOrderId": params.get(f"{where}ClientOrderId", ""),
        }
        legs.append(account.build_order(leg_params, now_ms))
    _check_relation(account, rules.symbol, side, legs)
    list_id = next(account.list_ids)
    for leg in legs:
        leg.order_list_id = list_id
    stop = next(leg for leg in legs if leg.order_type == "STOP_LOSS_LIMIT")
    account.lock(stop, rules, None)  # one hold for both legs: the stop leg carries it
    for leg in legs:
        leg.resting = leg.order_type == "LIMIT_MAKER"
        account.orders[leg.order_id] = leg
    client_id = params.get("listClientOrderId") or f"simlist-{list_id}"
    order_list = SimOrderList(
        list_id, client_id, rules.symbol, tuple(leg.order_id for leg in legs), now_ms
    )
    account.order_lists[list_id] = order_list
    return order_list


def _check_relation(account: SimulatedAccount, symbol: str, side: str, legs: list[Any]) -> None:
    limit = next(leg for leg in legs if leg.order_type == "LIMIT_MAKER")
    stop = next(leg for leg in legs if leg.order_type == "STOP_LOSS_LIMIT")
    last = account.last_price.get(symbol)
    if stop.stop_price <= 0:
        raise BinanceError(-1102, "Mandatory parameter 'belowStopPrice' was not sent.")
    reference = last if last is not None else (limit.price + stop.stop_price) / 2
    if side == "SELL":
        right = limit.price > reference > stop.stop_price
    else:
        right = limit.price < reference < stop.stop_price
    if not right:
        raise BinanceError(-2010, "The relationship of the prices for the orders is not correct.")


def stop_reached(order: SimOrder, price: Decimal) -> bool:
    """A trade at `price` triggers this stop leg."""
    return price <= order.stop_price if order.side == "SELL" else price >= order.stop_price


def expire_siblings(account: SimulatedAccount, order: SimOrder, now_ms: int) -> None:
    """`order` triggered or traded: the other legs of its list expire, and their hold on
    the account passes to it."""
    if order.order_list_id < 0:
        return
    for other in account.orders.values():
        if other.order_list_id == order.order_list_id and other is not order and other.is_open:
            other.status = "EXPIRED"
            other.update_ms = now_ms
            order.locked += other.locked
            other.locked = Decimal(0)


def find_list(account: SimulatedAccount, params: dict[str, str]) -> SimOrderList:
    """The list named by orderListId or listClientOrderId (origClientOrderId too)."""
    symbol = account.rules(params.get("symbol", "")).symbol
    named = params.get("listClientOrderId") or params.get("origClientOrderId")
    found: SimOrderList | None = None
    if "orderListId" in params:
        try:
            found = account.order_lists.get(int(params["orderListId"]))
        except ValueError:
            raise BinanceError(
                -1100, "Illegal characters found in parameter 'orderListId'."
            ) from None
    elif named:
        matches = [o for o in account.order_lists.values() if o.list_client_order_id == named]
        found = matches[-1] if matches else None
    else:
        raise BinanceError(-1102, "Param 'orderListId' or 'listClientOrderId' must be sent.")
    if found is None or found.symbol != symbol:
        raise BinanceError(-2011, "Order list does not exist.")
    return found


def cancel_list(account: SimulatedAccount, order_list: SimOrderList, now_ms: int) -> None:
    """Cancel every open leg of the list, releasing its hold."""
    legs = [account.orders[order_id] for order_id in order_list.order_ids]
    if not any(leg.is_open for leg in legs):
        raise BinanceError(-2011, "Unknown order sent.")
    for leg in legs:
        if leg.is_open:
            leg.status = "CANCELED"
            leg.update_ms = now_ms
            account.unlock(leg)
