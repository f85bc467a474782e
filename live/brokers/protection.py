"""Exchange-side protection: a position's stop-loss rests at the venue with its take-profit.

The engine's barriers stay the primary logic (it watches the stop, the holding timeout and
the strategy's exits, and cancels the take-profit before it sells). What this adds is a
venue that keeps protecting the position when the engine is gone: when the book places a
take-profit carrying its position's stop (`BrokerOrder.stop_price`), the ccxt broker sends
it as a Binance spot OCO (`POST /api/v3/orderList/oco`): the take-profit as the
`LIMIT_MAKER` leg under the book's own client order id, and a `STOP_LOSS_LIMIT` leg under
`venue_stop_order_id` of it ("b-5-tp" -> "b-5-vs"), triggered at the stop price with its
limit `stop_limit_pct` percent beyond. Both legs share the take-profit's quantity (the
filled quantity of the entry) and one hold on the coins, so the position can never be sold
twice:
- the engine exits on its own (stop, timeout, strategy, manual): it cancels the
  take-profit first, as it always does, and on Binance cancelling a leg cancels the list;
  the market exit goes out only after the venue confirmed that cancel;
- the take-profit leg fills: the stop leg expires, and the fill is the take-profit's;
- the stop leg is triggered: the take-profit leg expires; the broker then tracks the stop
  leg under its own id, and its acceptance and fills (the venue's price and fee) become
  the position's stop-loss exit (`PositionBook` adopts it, reason `stop_loss`).
At start the book sends its take-profit again and the broker looks the id up first
(`protect_existing`): a protected take-profit (or one whose stop took over) is adopted;
one found without its stop (a plain limit, or a list cancelled while the engine was away)
is cancelled if need be and placed again as an OCO. An OCO the venue refuses (the market
already through the stop, say) goes out as the plain take-profit, and the engine's own
stop watches the position. `ExchangeConfig.protection` turns all of this off.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import ccxt

from live.brokers.binance_answers import (
    CANCELLED_STATUSES,
    OPEN_STATUSES,
    OrderInfo,
    broker_order,
    order_info,
)
from live.brokers.exchange import ExchangeConfig, MalformedResponseError, is_refusal
from live.brokers.order_request import OrderRequest
from live.brokers.protocol import BrokerOrder
from tradepipe.domain import Side
from tradepipe.enums import OrderRole, OrderType
from tradepipe.orders import parse_client_order_id, venue_stop_order_id

if TYPE_CHECKING:
    from live.brokers.retrying import ExchangeCalls

__all__ = ["ProtectedPlacing", "oco_params", "protects", "take_profit_leg"]

log = logging.getLogger(__name__)

ENDED = CANCELLED_STATUSES | {"REJECTED"}


def protects(config: ExchangeConfig, order: BrokerOrder) -> bool:
    """Whether `order` goes out as an OCO: a limit take-profit carrying its stop."""
    parsed = parse_client_order_id(order.client_order_id)
    return (
        config.protection
        and order.stop_price is not None
        and order.order_type is OrderType.LIMIT
        and order.quantity is not None
        and parsed is not None
        and parsed[2] is OrderRole.TAKE_PROFIT
    )


def oco_params(
    client: Any, order: BrokerOrder, market: str, request: OrderRequest, stop_limit_pct: float
) -> dict[str, Any]:
    """The `POST /api/v3/orderList/oco` parameters of a protected take-profit: the
    take-profit limit-maker leg and the stop-loss-limit leg, one quantity for both."""
    assert order.stop_price is not None and request.price is not None
    sell = order.side is Side.SELL
    stop = client.price_to_precision(market, order.stop_price)
    beyond = 1 - stop_limit_pct / 100 if sell else 1 + stop_limit_pct / 100
    maker = {
        "Type": "LIMIT_MAKER",
        "Price": client.price_to_precision(market, request.price),
        "ClientOrderId": order.client_order_id,
    }
    stop_leg = {
        "Type": "STOP_LOSS_LIMIT",
        "Price": client.price_to_precision(market, float(stop) * beyond),
        "StopPrice": stop,
        "TimeInForce": "GTC",
        "ClientOrderId": venue_stop_order_id(order.client_order_id),
    }
    # a sell's take-profit lies above the market and its stop below; a buy's the mirror
    above, below = (maker, stop_leg) if sell else (stop_leg, maker)
    params: dict[str, Any] = {
        "symbol": client.market(market)["id"],
        "side": "SELL" if sell else "BUY",
        "quantity": client.amount_to_precision(market, request.amount),
    }
    params |= {f"above{key}": value for key, value in above.items()}
    params |= {f"below{key}": value for key, value in below.items()}
    return params


def take_profit_leg(answer: object, take_profit_id: str, what: str) -> dict[str, Any]:
    """The take-profit leg's order report in an OCO answer (Binance's JSON, checked)."""
    reports = answer.get("orderReports") if isinstance(answer, dict) else None
    if isinstance(reports, list):
        for report in reports:
            if isinstance(report, dict) and report.get("clientOrderId") == take_profit_id:
                order_info(report, what)
                return report
    raise MalformedResponseError(f"{what}: no report of leg {take_profit_id}: {answer!r:.200}")


class ProtectedPlacing:
    """The ccxt broker's part that places, re-places and follows protected take-profits
    (mixed into `CcxtBroker`, whose plumbing it uses)."""

    config: ExchangeConfig
    client: Any
    _retry: ExchangeCalls

    if TYPE_CHECKING:

        @property
        def name(self) -> str: ...

        async def _lookup(self, market: str, client_order_id: str) -> OrderInfo | None: ...

        def _track(self, order: BrokerOrder, market: str) -> Any: ...

        async def _sync(self, tracked: Any, info: OrderInfo | None = None) -> None: ...

    async def _send(self, order: BrokerOrder, market: str, request: OrderRequest) -> Any:
        """Create the order at the venue: a protected take-profit as an OCO (answered as
        `create_order` answers: the take-profit leg under "info")."""
        if not protects(self.config, order):
            return await self.client.create_order(market, *request.arguments)
        params = oco_params(self.client, order, market, request, self.config.stop_limit_pct)
        try:
            answer = await self.client.private_post_orderlist_oco(params)
        except ccxt.ExchangeError as error:
            if "Duplicate order sent" in str(error) or not is_refusal(error):
                raise
            log.warning(
                "%s: OCO for %s refused (%s): the take-profit goes alone, the engine "
                "watches the stop",
                self.name,
                order.client_order_id,
                error,
                extra={"order": order.client_order_id, "venue": self.name},
            )
            return await self.client.create_order(market, *request.arguments)
        what = f"{self.name}: new OCO of {order.client_order_id}"
        return {"info": take_profit_leg(answer, order.client_order_id, what)}

    async def _protect_existing(
        self, order: BrokerOrder, market: str, existing: OrderInfo
    ) -> OrderInfo | None:
        """What the venue holds under a protected take-profit's id, to adopt; None when
        its protection is missing and the OCO is to be placed (again)."""
        if not protects(self.config, order) or existing.executed > 0:
            return existing  # not ours to protect, or it traded: adopted as it is
        if existing.order_list >= 0:
            if existing.status in OPEN_STATUSES:
                return existing  # protected
            stop = await self._lookup(market, venue_stop_order_id(order.client_order_id))
            same_list = stop is not None and stop.order_list == existing.order_list
            if same_list and stop is not None and stop.status not in ENDED:
                return existing  # its stop took over: followed from the take-profit
            log.warning(
                "%s: the OCO of %s was cancelled while the engine was away; placed again",
                self.name,
                order.client_order_id,
                extra={"order": order.client_order_id, "venue": self.name},
            )
            return None
        if existing.status not in OPEN_STATUSES:
            return existing  # a plain take-profit that ended: the book hears how
        # a plain take-profit resting alone: swap it for an OCO
        with contextlib.suppress(ccxt.OrderNotFound):  # finished meanwhile: read below
            await self._retry.call(
                f"cancel unprotected {order.client_order_id}",
                self.client.cancel_order,
                existing.order_id,
                market,
            )
        after = await self._lookup(market, order.client_order_id)
        if after is not None and (after.executed > 0 or after.status not in CANCELLED_STATUSES):
            return after
        log.warning(
            "%s: %s rested without its stop; placed again as an OCO",
            self.name,
            order.client_order_id,
            extra={"order": order.client_order_id, "venue": self.name},
        )
        return None

    async def _stop_took_over(self, market: str, take_profit_id: str, info: OrderInfo) -> bool:
        """The take-profit leg `info` of an OCO ended without trading: if its stop leg was
        triggered (working or filled), that leg carries the exit from now on, tracked and
        reported under its own id. False: both legs were cancelled."""
        parsed = parse_client_order_id(take_profit_id)
        if info.order_list < 0 or parsed is None or parsed[2] is not OrderRole.TAKE_PROFIT:
            return False
        stop = await self._lookup(market, venue_stop_order_id(take_profit_id))
        if stop is None or stop.order_list != info.order_list or stop.status in ENDED:
            return False
        await self._sync(self._track(broker_order(stop), market), stop)
        return True
