"""The simulated Binance spot account: markets with their filters, balances, orders, trades.

Pure state, no I/O: `server.py` turns HTTP requests into calls here and `BinanceError`s
into Binance's error JSON. Arithmetic is `Decimal`, as the exchange's is, so a quantity
off the lot-size grid is refused exactly where Binance refuses it.

What it enforces, with Binance's codes and messages:
- `PRICE_FILTER` (tick size), `LOT_SIZE` (step size, minimum quantity) and `NOTIONAL`
  (minimum notional, also for market orders): -1013 "Filter failure: <FILTER>";
- balance: a buy locks its quote (a market buy its `quoteOrderQty`, or quantity times the
  last price), a sell its base; not enough free is -2010 "Account has insufficient balance
  for requested action.";
- a `newClientOrderId` that an open order already carries: -2010 "Duplicate order sent."
  (Binance only refuses ids of open orders; a finished order's id may be reused there,
  which is why the broker looks an id up before it places it).

Matching, against the public trades pushed with `on_trade` (the replay's market):
- a market order fills at once at the last trade price (taker), or at the next trade when
  none has printed yet;
- a limit order that is marketable on arrival (a buy at or above the last price) fills at
  the last price as taker; otherwise it rests and fills at its limit, as maker, when a trade
  prints at or through it. With `fill_parts` > 1 a resting order fills in that many equal
  parts on successive touching trades (partial fills, `PARTIALLY_FILLED`).
Order and trade times are the market's (the last trade's time), as on an exchange whose
clock is the market's, also when a replay plays an old day; before any trade, the wall's.
Commission is `commission_rate` of what the order receives, in the asset received, as on
Binance without a BNB discount: a buy pays it in the base asset, a sell in the quote.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from live.replay.exchange import order_lists
from live.replay.exchange.errors import BinanceError
from live.replay.exchange.order_lists import SimOrderList
from tradepipe.domain import Trade

__all__ = ["BinanceError", "MarketRules", "SimOrder", "SimTrade", "SimulatedAccount"]

ZERO = Decimal(0)


def _quote_of(symbol: str) -> str:
    return next((q for q in ("USDT", "USDC", "BTC", "ETH", "BNB") if symbol.endswith(q)), "USDT")


@dataclass(frozen=True, slots=True)
class MarketRules:
    """One symbol's trading rules, as exchangeInfo publishes them."""

    symbol: str
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")

    @property
    def quote(self) -> str:
        return _quote_of(self.symbol)

    @property
    def base(self) -> str:
        return self.symbol[: -len(self.quote)]

    def info(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "status": "TRADING", "baseAsset": self.base,
            "baseAssetPrecision": 8, "quoteAsset": self.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"],
            "icebergAllowed": False, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": str(self.tick_size),
                 "maxPrice": "1000000.00", "tickSize": str(self.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": str(self.min_qty), "maxQty": "9000.0",
                 "stepSize": str(self.step_size)},
                {"filterType": "NOTIONAL", "minNotional": str(self.min_notional),
                 "applyMinToMarket": True, "maxNotional": "9000000.0",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
        }  # fmt: skip


@dataclass(slots=True)
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    order_type: str  # LIMIT | MARKET | LIMIT_MAKER | STOP_LOSS_LIMIT (legs of an OCO)
    price: Decimal  # 0 for market orders
    quantity: Decimal  # 0 for a market buy sized by quoteOrderQty until it fills
    quote_quantity: Decimal  # quoteOrderQty, else 0
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    quote_executed: Decimal = ZERO
    locked: Decimal = ZERO  # what the order still holds of the account
    resting: bool = False
    update_ms: int = 0
    stop_price: Decimal = ZERO  # a STOP_LOSS_LIMIT's trigger
    triggered: bool = False  # a stop leg the market has reached: it works as a limit now
    order_list_id: int = -1  # the OCO it belongs to (order_lists.py), -1 for none

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def view(self) -> dict[str, Any]:
        """The order as GET /api/v3/order shows it."""
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id, "price": _fmt(self.price),
            "origQty": _fmt(self.quantity), "executedQty": _fmt(self.executed),
            "cummulativeQuoteQty": _fmt(self.quote_executed), "status": self.status,
            "timeInForce": "GTC",
            "type": self.order_type, "side": self.side, "stopPrice": _fmt(self.stop_price),
            "icebergQty": "0.00000000", "time": self.time_ms, "updateTime": self.update_ms,
            "isWorking": self.is_open, "workingTime": self.time_ms,
            "origQuoteOrderQty": _fmt(self.quote_quantity),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    time_ms: int

    def view(self) -> dict[str, Any]:
        """The trade as GET /api/v3/myTrades shows it."""
        return {
            "symbol": self.symbol, "id": self.trade_id, "orderId": self.order_id,
            "orderListId": -1, "price": _fmt(self.price), "qty": _fmt(self.quantity),
            "quoteQty": _fmt(self.price * self.quantity), "commission": _fmt(self.commission),
            "commissionAsset": self.commission_asset, "time": self.time_ms,
            "isBuyer": self.side == "BUY", "isMaker": self.maker, "isBestMatch": True,
        }  # fmt: skip


@dataclass
class SimulatedAccount:
    """One account on one simulated exchange (the API key's)."""

    markets: dict[str, MarketRules]
    balances: dict[str, list[Decimal]] = field(default_factory=dict)  # asset -> [free, locked]
    commission_rate: Decimal = Decimal("0.001")
    fill_parts: int = 1
    orders: dict[int, SimOrder] = field(default_factory=dict)
    order_lists: dict[int, SimOrderList] = field(default_factory=dict)
    trades: list[SimTrade] = field(default_factory=list)
    last_price: dict[str, Decimal] = field(default_factory=dict)
    market_time_ms: int | None = None  # the last trade's time: the account's clock
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _trade_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5001))
    list_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def deposit(self, asset: str, amount: float | str) -> None:
        self._balance(asset)[0] += Decimal(str(amount))

    def balance_view(self) -> list[dict[str, str]]:
        return [
            {"asset": asset, "free": _fmt(free), "locked": _fmt(locked)}
            for asset, (free, locked) in sorted(self.balances.items())
        ]

    # -- requests ----------------------------------------------------------------------------

    def new_order(self, params: dict[str, str], now_ms: int) -> SimOrder:
        if params.get("type", "") not in ("LIMIT", "MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        order = self.build_order(params, now_ms)
        rules = self.rules(order.symbol)
        self.lock(order, rules, self.last_price.get(rules.symbol))
        self.orders[order.order_id] = order
        last = self.last_price.get(rules.symbol)
        if last is not None:
            self._arrive(order, rules, last, now_ms)
        return order

    def new_oco(self, params: dict[str, str], now_ms: int) -> SimOrderList:
        return order_lists.new_oco(self, params, now_ms)

    def build_order(self, params: dict[str, str], now_ms: int) -> SimOrder:
        """An order checked against the filters, neither holding the account nor stored."""
        rules = self.rules(params.get("symbol", ""))
        side = params.get("side", "")
        kind = params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'side'.")
        client_id = params.get("newClientOrderId") or f"sim-{next(self._ids)}"
        if any(o.client_order_id == client_id and o.is_open for o in self.orders.values()):
            raise BinanceError(-2010, "Duplicate order sent.")
        quantity = _decimal(params, "quantity")
        quote_quantity = _decimal(params, "quoteOrderQty")
        price = _decimal(params, "price")
        stop_price = _decimal(params, "stopPrice")
        if kind != "MARKET":
            if price is None or quantity is None:
                raise BinanceError(-1102, "Mandatory parameter 'price' or 'quantity' was not sent.")
            if kind != "LIMIT_MAKER" and params.get("timeInForce") not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1102, "Mandatory parameter 'timeInForce' was not sent.")
        if kind == "STOP_LOSS_LIMIT" and stop_price is None:
            raise BinanceError(-1102, "Mandatory parameter 'stopPrice' was not sent.")
        elif (quantity is None) == (quote_quantity is None):
            raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent.")
        for level in (price, stop_price):
            if level is not None and (level <= 0 or level % rules.tick_size):
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        if quantity is not None and (quantity < rules.min_qty or quantity % rules.step_size):
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        reference = price if price is not None else self.last_price.get(rules.symbol)
        notional = (
            quote_quantity
            if quote_quantity is not None
            else (quantity or ZERO) * (reference or ZERO)
        )
        if reference is not None and notional < rules.min_notional:
            raise BinanceError(-1013, "Filter failure: NOTIONAL")
        return SimOrder(
            order_id=next(self._ids),
            client_order_id=client_id,
            symbol=rules.symbol,
            side=side,
            order_type=kind,
            price=price or ZERO,
            quantity=quantity or ZERO,
            quote_quantity=quote_quantity or ZERO,
            time_ms=now_ms,
            update_ms=now_ms,
            stop_price=stop_price or ZERO,
        )

    def cancel(self, params: dict[str, str], now_ms: int) -> SimOrder:
        order = self.find(params)
        if order.order_list_id >= 0:  # a leg of an OCO: the whole list goes
            order_lists.cancel_list(self, self.order_lists[order.order_list_id], now_ms)
            return order
        if not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = now_ms
        self.unlock(order)
        return order

    def find(self, params: dict[str, str]) -> SimOrder:
        """The order named by orderId or origClientOrderId (the most recent with that id)."""
        symbol = self.rules(params.get("symbol", "")).symbol
        if "orderId" in params:
            try:
                order = self.orders.get(int(params["orderId"]))
            except ValueError:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'orderId'."
                ) from None
        elif "origClientOrderId" in params:
            named = [
                o for o in self.orders.values()
                if o.client_order_id == params["origClientOrderId"] and o.symbol == symbol
            ]  # fmt: skip
            order = named[-1] if named else None
        else:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent.")
        if order is None or order.symbol != symbol:
            raise BinanceError(-2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None) -> list[SimOrder]:
        if symbol is not None:
            symbol = self.rules(symbol).symbol
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def my_trades(self, params: dict[str, str]) -> list[SimTrade]:
        symbol = self.rules(params.get("symbol", "")).symbol
        trades = [t for t in self.trades if t.symbol == symbol]
        if "orderId" in params:
            trades = [t for t in trades if str(t.order_id) == params["orderId"]]
        if "startTime" in params:
            trades = [t for t in trades if t.time_ms >= int(params["startTime"])]
        if "fromId" in params:
            trades = [t for t in trades if t.trade_id >= int(params["fromId"])]
        limit = min(int(params.get("limit", 500)), 1000)
        # like Binance: from startTime/fromId the oldest first, else the most recent
        return trades[:limit] if "startTime" in params or "fromId" in params else trades[-limit:]

    def rules(self, symbol: str) -> MarketRules:
        rules = self.markets.get(symbol)
        if rules is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return rules

    # -- the market --------------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        rules = self.markets.get(trade.symbol)
        if rules is None:
            return
        price = Decimal(repr(trade.price))
        self.last_price[trade.symbol] = price
        self.market_time_ms = max(trade.time_ms, self.market_time_ms or trade.time_ms)
        for order in [o for o in self.orders.values() if o.symbol == trade.symbol and o.is_open]:
            if not order.is_open:
                continue  # the other leg of its OCO ended it during this trade
            if order.order_type == "STOP_LOSS_LIMIT" and not order.triggered:
                if not order_lists.stop_reached(order, price):
                    continue
                order.triggered = True  # from now on a limit order at its price
                order_lists.expire_siblings(self, order, trade.time_ms)
            if not order.resting:
                self._arrive(order, rules, price, trade.time_ms)
            elif (price <= order.price) if order.side == "BUY" else (price >= order.price):
                part = (order.quantity / self.fill_parts).quantize(rules.step_size, ROUND_DOWN)
                left = order.quantity - order.executed
                self._fill(order, rules, order.price, left if part >= left else part,
                           maker=True, now_ms=trade.time_ms)  # fmt: skip

    def _arrive(self, order: SimOrder, rules: MarketRules, last: Decimal, now_ms: int) -> None:
        """An order meeting the market for the first time: fill it if it is marketable."""
        if order.order_type == "MARKET":
            quantity = order.quantity or (order.quote_quantity / last).quantize(
                rules.step_size, ROUND_DOWN
            )
            if order.quantity == 0:
                order.quantity = quantity
            self._fill(order, rules, last, quantity, maker=False, now_ms=now_ms)
            return
        if (last <= order.price) if order.side == "BUY" else (last >= order.price):
            self._fill(order, rules, last, order.quantity, maker=False, now_ms=now_ms)
        else:
            order.resting = True

    def _fill(
        self,
        order: SimOrder,
        rules: MarketRules,
        price: Decimal,
        quantity: Decimal,
        *,
        maker: bool,
        now_ms: int,
    ) -> None:
        if quantity <= 0:
            return
        order_lists.expire_siblings(self, order, now_ms)
        notional = price * quantity
        received = quantity if order.side == "BUY" else notional
        commission = (received * self.commission_rate).quantize(Decimal("0.00000001"))
        base, quote = self._balance(rules.base), self._balance(rules.quote)
        if order.side == "BUY":
            spend = min(order.locked, notional)  # a market buy held nothing: all from free
            order.locked -= spend
            quote[1] -= spend
            quote[0] -= notional - spend
            base[0] += quantity - commission
        else:
            order.locked -= quantity
            base[1] -= quantity
            quote[0] += notional - commission
        order.executed += quantity
        order.quote_executed += notional
        order.update_ms = now_ms
        order.resting = True
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self.unlock(order)
        trade_id = next(self._trade_ids)
        self.trades.append(
            SimTrade(
                trade_id,
                order.order_id,
                order.symbol,
                order.side,
                price,
                quantity,
                commission,
                rules.base if order.side == "BUY" else rules.quote,
                maker,
                now_ms,
            )
        )

    # -- balances ----------------------------------------------------------------------------

    def _balance(self, asset: str) -> list[Decimal]:
        return self.balances.setdefault(asset, [ZERO, ZERO])

    def lock(self, order: SimOrder, rules: MarketRules, reference: Decimal | None) -> None:
        if order.side == "BUY":
            asset = rules.quote
            if order.order_type != "MARKET":
                need = order.price * order.quantity
            elif order.quote_quantity:
                need = order.quote_quantity
            else:
                need = order.quantity * (reference or ZERO)
        else:
            asset, need = rules.base, order.quantity
        balance = self._balance(asset)
        if balance[0] < need:
            raise BinanceError(-2010, "Account has insufficient balance for requested action.")
        if order.side == "BUY" and order.order_type == "MARKET":
            return  # fills at once (or at the next trade); nothing to hold meanwhile
        balance[0] -= need if order.side == "SELL" else order.price * order.quantity
        balance[1] += need if order.side == "SELL" else order.price * order.quantity
        order.locked = need if order.side == "SELL" else order.price * order.quantity

    def unlock(self, order: SimOrder) -> None:
        if order.locked <= 0:
            return
        rules = self.rules(order.symbol)
        balance = self._balance(rules.quote if order.side == "BUY" else rules.base)
        balance[0] += order.locked
        balance[1] -= order.locked
        order.locked = ZERO


def _fmt(value: Decimal) -> str:
    """Binance's decimal strings: eight places."""
    return f"{value:.8f}"


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    if name not in params or params[name] == "":
        return None
    try:
        value = Decimal(params[name])
    except ArithmeticError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None
    if not value.is_finite() or value <= 0:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
    return value
