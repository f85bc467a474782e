"""Reading Binance's spot REST answers: the fields of orders and trades the ccxt broker
relies on, checked, and Binance's order statuses.

ccxt parses loosely (a missing field becomes None); an order the broker acts on must have
its status, ids and quantities, so each answer is read here from its raw Binance JSON
(`info`) and anything else is `MalformedResponseError` naming the endpoint, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from live.brokers.exchange import MalformedResponseError
from live.brokers.protocol import BrokerOrder
from tradepipe.domain import Side
from tradepipe.enums import OrderType
from tradepipe.orders import FeeSchedule, Liquidity

__all__ = [
    "CANCELLED_STATUSES",
    "KNOWN_STATUSES",
    "OPEN_STATUSES",
    "OrderInfo",
    "broker_order",
    "fee_in_quote",
    "order_info",
    "received_quantity",
    "trade_id_order",
    "trade_info",
]

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW", "PENDING_CANCEL"})
CANCELLED_STATUSES = frozenset({"CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})
KNOWN_STATUSES = OPEN_STATUSES | CANCELLED_STATUSES | {"FILLED", "REJECTED"}


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """The fields of a Binance order the broker relies on, checked."""

    order_id: str
    client_order_id: str
    symbol: str
    status: str
    side: Side
    order_type: OrderType
    price: float
    quantity: float
    executed: float
    quote_quantity: float
    quote_executed: float
    order_list: int = -1  # the OCO this order is a leg of (-1: none)
    stop_price: float = 0.0


def order_info(raw: object, what: str) -> OrderInfo:
    """The order fields of Binance's JSON, or `MalformedResponseError` naming `what`."""
    if not isinstance(raw, dict):
        raise MalformedResponseError(f"{what}: expected an order object, got {_short(raw)}")
    try:
        status = str(raw["status"])
        if status not in KNOWN_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        side = Side.BUY if raw["side"] == "BUY" else Side.SELL
        if raw["side"] not in ("BUY", "SELL"):
            raise ValueError(f"unknown side {raw['side']!r}")
        # a leg of an OCO (LIMIT_MAKER, STOP_LOSS_LIMIT) works as a limit order
        kind = OrderType.MARKET if raw["type"] == "MARKET" else OrderType.LIMIT
        return OrderInfo(
            order_id=str(int(raw["orderId"])),
            client_order_id=str(raw["clientOrderId"]),
            symbol=str(raw["symbol"]),
            status=status,
            side=side,
            order_type=kind,
            price=_number(raw.get("price", "0")),
            quantity=_number(raw["origQty"]),
            executed=_number(raw["executedQty"]),
            quote_quantity=_number(raw.get("origQuoteOrderQty", "0")),
            quote_executed=_number(raw.get("cummulativeQuoteQty", "0")),
            order_list=int(raw.get("orderListId", -1)),
            stop_price=_number(raw.get("stopPrice", "0")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedResponseError(f"{what}: malformed order ({error}): {_short(raw)}") from None


def trade_info(trade: object, what: str) -> dict[str, Any]:
    """ccxt's parsed trade, checked against its raw Binance fields."""
    raw = trade.get("info") if isinstance(trade, dict) else None
    if not isinstance(trade, dict) or not isinstance(raw, dict):
        raise MalformedResponseError(f"{what}: expected a trade object, got {_short(trade)}")
    try:
        fee_cost = raw.get("commission")
        return {
            "id": str(int(raw["id"])),
            "order": str(int(raw["orderId"])),
            "price": _number(raw["price"]),
            "amount": _number(raw["qty"]),
            "timestamp": int(raw["time"]),
            "maker": bool(raw.get("isMaker", False)),
            "fee_cost": None if fee_cost is None else _number(fee_cost),
            "fee_currency": raw.get("commissionAsset"),
        }
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedResponseError(f"{what}: malformed trade ({error}): {_short(raw)}") from None


def broker_order(info: OrderInfo) -> BrokerOrder:
    """What is left of an exchange order, as the engine describes orders."""
    if info.quantity > 0:
        left = info.quantity - info.executed
        price = info.price if info.order_type is OrderType.LIMIT else None
        return BrokerOrder(
            info.client_order_id, info.symbol, info.side, info.order_type, price, left
        )
    left_quote = info.quote_quantity - info.quote_executed
    return BrokerOrder(
        info.client_order_id, info.symbol, info.side, info.order_type, None, None, left_quote
    )


def received_quantity(market: Mapping[str, Any], side: Side, trade: Mapping[str, Any]) -> float:
    """The coins a buy added to the account: Binance takes its commission from what a
    buy receives (the base asset, without a BNB discount), so the position holds, and
    its exit can sell, only the rest. The commission still counts as the fee (its value
    at the trade price), so cost basis is price x net + fee = what was paid."""
    quantity = float(trade["amount"])
    if side is Side.BUY and trade["fee_currency"] == market["base"]:
        quantity -= float(trade["fee_cost"] or 0.0)
    return quantity


def fee_in_quote(market: Mapping[str, Any], trade: Mapping[str, Any], fees: FeeSchedule) -> float:
    """A trade's commission in the quote asset; one paid in a third asset (BNB) is
    estimated with the fee schedule."""
    cost, currency = trade["fee_cost"], trade["fee_currency"]
    if cost is None or currency == market["quote"]:
        return float(cost or 0.0)
    if currency == market["base"]:
        return float(cost) * float(trade["price"])
    liquidity = Liquidity.MAKER if trade["maker"] else Liquidity.TAKER
    return float(fees.fee(trade["price"] * trade["amount"], liquidity))


def _number(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"bad number {value!r}")
    return number


def trade_id_order(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
