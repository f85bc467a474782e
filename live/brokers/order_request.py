"""An engine order as Binance will accept it, or the reason it would not.

The exchange refuses a quantity off its lot-size grid, a price off its tick, and an order
whose notional is under its minimum. Those rules are published (exchangeInfo, read by
ccxt's `load_markets`), so the broker applies them before sending: quantities are cut
down to the lot (never rounded up: that would spend more than the book decided, or sell
coins the account does not hold), prices rounded to the tick, and an order the exchange
would refuse is refused here with the filter's name, without a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ccxt

from live.brokers.exchange import exchange_message
from live.brokers.protocol import BrokerOrder
from live.brokers.retrying import ExchangeCalls
from tradepipe.domain import Side
from tradepipe.enums import OrderRole, OrderType
from tradepipe.orders import parse_client_order_id

__all__ = ["OrderRequest", "balance_problem", "entry_needs", "prepare_order"]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """ccxt's `create_order` arguments for one engine order."""

    kind: str  # "limit" | "market"
    side: str  # "buy" | "sell"
    amount: float | None  # base quantity; None for a market buy sized in quote
    price: float | None
    quote_amount: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments(self) -> tuple[str, str, float | None, float | None, dict[str, Any]]:
        params = dict(self.params)
        if self.quote_amount is not None:
            params["quoteOrderQty"] = self.quote_amount
        return self.kind, self.side, self.amount, self.price, params


def prepare_order(
    client: Any, order: BrokerOrder, market: str, last_price: float | None
) -> OrderRequest | str:
    """The request for `order` on ccxt market `market`, or why the exchange would refuse
    it. `last_price` (the market's last trade) sizes the notional of a market order."""
    spec = client.market(market)
    price: float | None = None
    if order.order_type is OrderType.LIMIT:
        assert order.price is not None
        price = float(client.price_to_precision(market, order.price))
    reference = price or last_price
    amount: float | None = None
    quote: float | None = None
    try:
        if order.quantity is not None:
            # a hair up first: a float just under a lot boundary must not lose a step
            amount = float(client.amount_to_precision(market, order.quantity * (1 + 1e-12)))
            notional = None if reference is None else amount * reference
        else:
            assert order.quote_quantity is not None
            quote = float(client.cost_to_precision(market, order.quote_quantity))
            notional = quote
    except ccxt.InvalidOrder as error:
        return f"below the lot size ({exchange_message(error)})"
    minimum_amount = spec["limits"]["amount"]["min"]
    if amount is not None and (amount <= 0 or (minimum_amount and amount < minimum_amount)):
        return f"quantity {amount} below the minimum {minimum_amount} (LOT_SIZE)"
    minimum_notional = spec["limits"]["cost"]["min"]
    if notional is not None and minimum_notional and notional < minimum_notional:
        return (
            f"notional {notional:.8g} below the exchange minimum {minimum_notional:g} "
            "(NOTIONAL filter)"
        )
    return OrderRequest(
        kind=order.order_type.value,
        side="buy" if order.side is Side.BUY else "sell",
        amount=amount,
        price=price,
        quote_amount=quote,
        params={"newClientOrderId": order.client_order_id},
    )


def entry_needs(
    order: BrokerOrder,
    market: dict[str, Any],
    request: OrderRequest,
    last_price: float | None,
    taker_rate: float,
) -> tuple[str, float] | None:
    """The asset and amount an entry spends (a buy's quote with the taker fee, a sell's
    base), or None: not an entry (exits sell what the entry bought, and the exchange has
    the last word anyway), or no price known to value it."""
    parsed = parse_client_order_id(order.client_order_id)
    if parsed is None or parsed[2] is not OrderRole.ENTRY:
        return None
    if request.side != "buy":
        return market["base"], float(request.amount or 0.0)
    reference = request.price or last_price
    if request.quote_amount is not None:
        need = request.quote_amount
    elif request.amount is not None and reference is not None:
        need = request.amount * reference
    else:
        return None  # the exchange decides
    return market["quote"], need * (1 + taker_rate)


async def balance_problem(
    calls: ExchangeCalls,
    order: BrokerOrder,
    market: str,
    request: OrderRequest,
    last_price: float | None,
    taker_rate: float,
) -> str | None:
    """Why an entry cannot be paid for on the venue of `calls`, or None. Exits are not
    checked: they sell what the entry bought, and the exchange has the last word anyway."""
    client = calls.client
    needed = entry_needs(order, client.market(market), request, last_price, taker_rate)
    if needed is None:
        return None
    asset, need = needed
    balance = await calls.call("balance", client.fetch_balance)
    entry = balance.get(asset) if isinstance(balance, dict) else None
    free = entry.get("free") if isinstance(entry, dict) else None
    free = float(free) if isinstance(free, int | float) else 0.0
    if free + 1e-12 < need:
        return (
            f"insufficient {asset} balance on {calls.name} for {order.client_order_id}: "
            f"{free:.8g} free, {need:.8g} needed"
        )
    return None
