"""Binance spot (testnet or live) behind the `Broker` seam, through ccxt.

Idempotence is the point. The engine's client order id goes out as `newClientOrderId`,
and before any order is sent the broker asks the exchange for that id
(`origClientOrderId`): Binance only refuses an id that an *open* order carries, so an
order that was accepted and then filled before a retry (a timeout, a dropped connection,
a restart) would otherwise be placed twice. An id the exchange already holds is adopted:
acknowledged, and its fills reported, never sent again. A -2010 "Duplicate order sent."
is treated the same way.

Before sending: the quantity is cut to the lot size and the price rounded to the tick
(ccxt's market precision), the notional is checked against the exchange's minimum, and an
entry's balance is checked; any of these that fails is an `OrderRejectedReport` naming the
filter, as is every refusal by the exchange (with its own message). Refusals are never
retried; network errors, 5xx and rate limits are (live/brokers/retrying.py), and after the
last attempt the engine's outbox tries again later, looking the order up first as well.

Status comes by polling (`poll_seconds`): the open orders of each symbol with tracked
orders, then `GET /api/v3/order` and `myTrades` for any order whose executed quantity moved
or that left the open list. Every exchange trade becomes one `OrderFilledReport` whose
`fill_id` is the exchange's trade id (`complete` once the order is FILLED); CANCELED and
EXPIRED become `OrderCancelledReport`, REJECTED an `OrderRejectedReport`. A re-sent order
that had part-filled before a restart reports only the trades beyond what the engine's
book had already counted (the book sends what is left, so the difference is known).

Fees are reported in the quote asset, and a buy reports the coins received net of a
commission taken in them (live/brokers/binance_answers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ccxt

from live.brokers.binance_answers import (
    CANCELLED_STATUSES,
    OrderInfo,
    broker_order,
    fee_in_quote,
    order_info,
    received_quantity,
    trade_id_order,
    trade_info,
)
from live.brokers.exchange import (
    ExchangeConfig,
    MalformedResponseError,
    exchange_message,
    is_refusal,
    is_transient,
    make_client,
)
from live.brokers.order_request import OrderRequest, balance_problem, prepare_order
from live.brokers.protection import ProtectedPlacing
from live.brokers.protocol import (
    BrokerError,
    BrokerOrder,
    BrokerReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    OrderRejectedReport,
    ReportSink,
    VenueFill,
)
from live.brokers.retrying import PARSE_ERRORS, ExchangeCalls
from tradepipe.domain import Trade
from tradepipe.orders import Liquidity

__all__ = ["CcxtBroker"]

log = logging.getLogger(__name__)

DONE_MEMORY = 10_000
RECENT_FILLS = 1000  # trades per symbol that reconciliation reads (Binance's maximum)


@dataclass(slots=True)
class _Tracked:
    order: BrokerOrder
    market: str  # ccxt's unified symbol
    exchange_id: str | None = None
    accepted: bool = False
    reported: float = 0.0  # executed base quantity seen so far (counted or skipped)
    received: float = 0.0  # the same net of a buy's commission in coins (the book's unit)
    received_quote: float = 0.0
    skip_base: float = 0.0  # filled before this process tracked it: the book has it
    skip_quote: float = 0.0
    fill_ids: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class CcxtBroker(ProtectedPlacing):
    """One venue (one account) through one ccxt client; a take-profit goes out with its
    stop-loss resting beside it (live/brokers/protection.py)."""

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        api_key: str,
        secret: str,
        clock: Callable[[], int | None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.client: Any = make_client(config, api_key, secret)
        self._clock = clock
        self._sink: ReportSink | None = None
        self._tracked: dict[str, _Tracked] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self._markets: dict[str, str] | None = None  # exchange symbol -> ccxt symbol
        self._last_price: dict[str, float] = {}
        self._client_ids: dict[str, str] = {}  # exchange order id -> client order id
        self._poller: asyncio.Task[None] | None = None
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # waits between tries
        self._retry = ExchangeCalls(
            config.name,
            config.retry,
            config.retry_attempts,
            self.client,
            random.Random(seed),
            lambda s: self.sleep(s),
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def requests_retried(self) -> int:
        return self._retry.retried

    # -- the Broker protocol ---------------------------------------------------------------

    def bind(self, sink: ReportSink) -> None:
        self._sink = sink

    async def place(self, order: BrokerOrder) -> None:
        order_id = order.client_order_id
        if order_id in self._tracked or order_id in self._done:
            return  # working here already, or finished: never a second order
        market = await self._market(order.symbol)
        if market is None:
            self._reject(order_id, f"symbol {order.symbol} is not traded on {self.name}")
            return
        existing = await self._lookup(market, order_id)
        if existing is not None:
            existing = await self._protect_existing(order, market, existing)
        if existing is not None:
            await self._adopt(order, market, existing)
            return
        request = prepare_order(self.client, order, market, self._last_price.get(order.symbol))
        if isinstance(request, str):
            self._reject(order_id, f"{order_id} on {order.symbol} ({self.name}): {request}")
            return
        last, taker = self._last_price.get(order.symbol), self.config.fees.taker_rate
        problem = await balance_problem(self._retry, order, market, request, last, taker)
        if problem is not None:
            self._reject(order_id, problem)
            return
        await self._send_until_known(order, market, request)

    async def _send_until_known(
        self, order: BrokerOrder, market: str, request: OrderRequest
    ) -> None:
        """Sends the order and tracks it; when the outcome of a send is unknown (or the id is
        taken), looks on the exchange before sending again."""
        order_id = order.client_order_id
        attempt = 0
        while True:
            try:
                placed = await self._send(order, market, request)
                break
            except ccxt.AuthenticationError as error:
                message = exchange_message(error)
                raise BrokerError(f"{self.name}: credentials refused: {message}") from None
            except Exception as error:
                duplicate = "Duplicate order sent" in str(error)
                if not duplicate and is_refusal(error):
                    self._reject(order_id, f"{self.name} refused: {exchange_message(error)}")
                    return
                unreadable = isinstance(error, (ccxt.BadResponse, *PARSE_ERRORS))
                if not duplicate and not (is_transient(error) or unreadable):
                    raise
                # The outcome is unknown (or the id is taken): look before sending again.
                if not duplicate and not unreadable:
                    attempt = await self._retry.back_off(attempt, f"place {order_id}", error)
                existing = await self._lookup(market, order_id)
                if existing is not None:
                    await self._adopt(order, market, existing)
                    return
                if duplicate:  # taken, yet not found under this symbol: never loop on it
                    self._reject(order_id, f"{self.name} refused: {exchange_message(error)}")
                    return
                if unreadable:
                    raise MalformedResponseError(
                        f"{self.name}: malformed answer to placing {order_id}: "
                        f"{type(error).__name__}: {error}"
                    ) from None
        info = order_info(placed.get("info"), f"{self.name}: new order {order_id}")
        tracked = self._track(order, market)
        await self._sync(tracked, info)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        if client_order_id in self._done:
            return  # filled or cancelled before the cancel arrived: that report stands
        tracked = self._tracked.get(client_order_id)
        market = tracked.market if tracked is not None else await self._market(symbol)
        if market is None:
            self._report(OrderCancelledReport(client_order_id, self._now()))
            return
        try:
            await self._retry.call(
                f"cancel {client_order_id}",
                self.client.cancel_order,
                None,
                market,
                {"origClientOrderId": client_order_id},
            )
        except ccxt.OrderNotFound:
            pass  # not open (any more): what it became is read below
        except ccxt.ExchangeError as error:
            log.warning("%s: cancel of %s refused: %s", self.name, client_order_id, error)
        info = await self._lookup(market, client_order_id)
        if info is None:  # never reached the venue: it is not working there
            self._tracked.pop(client_order_id, None)
            self._finish(client_order_id)
            self._report(OrderCancelledReport(client_order_id, self._now()))
            return
        if tracked is None:
            tracked = self._track(broker_order(info), market)
        await self._sync(tracked, info)

    async def open_orders(self) -> list[BrokerOrder]:
        await self._market("")  # markets first: open orders of every symbol need them
        raw = await self._retry.call("open orders", self.client.fetch_open_orders)
        return [broker_order(order_info(item.get("info"), "open orders")) for item in raw]

    async def recent_fills(self, symbols: Iterable[str], since_ms: int) -> list[VenueFill]:
        fills: list[VenueFill] = []
        for symbol in sorted(set(symbols)):
            market = await self._market(symbol)
            if market is None:
                continue
            # the most recent trades (Binance's maximum page), not the oldest since
            # `since_ms`: with a start time Binance pages forward from it
            trades = await self._retry.call(
                f"fills of {symbol}", self.client.fetch_my_trades, market, None, RECENT_FILLS
            )
            for trade in trades:
                raw = trade_info(trade, f"{self.name}: fills of {symbol}")
                if raw["timestamp"] < since_ms:
                    continue
                client_id = await self._client_id(market, raw["order"])
                fills.append(
                    VenueFill(
                        symbol,
                        client_id,
                        raw["order"],
                        raw["id"],
                        raw["price"],
                        raw["amount"],
                        raw["timestamp"],
                    )
                )
        return fills

    def on_trade(self, trade: Trade) -> None:
        self._last_price[trade.symbol] = trade.price

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        with contextlib.suppress(Exception):
            await self.client.close()
        self._sink = None

    # -- after sending ---------------------------------------------------------------------

    def _track(self, order: BrokerOrder, market: str) -> _Tracked:
        tracked = self._tracked.get(order.client_order_id)
        if tracked is None:
            tracked = self._tracked[order.client_order_id] = _Tracked(order, market)
        self._ensure_poller()
        return tracked

    async def _adopt(self, order: BrokerOrder, market: str, info: OrderInfo) -> None:
        """An order the exchange holds already: what the book sends now is what is left of
        it, so what the exchange filled beyond that was counted before."""
        tracked = self._track(order, market)
        if order.quantity is not None:
            tracked.skip_base = max(0.0, info.quantity - order.quantity)
        elif order.quote_quantity is not None:
            tracked.skip_quote = max(0.0, info.quote_quantity - order.quote_quantity)
        log.info(
            "%s: %s exists already (%s), adopted instead of placed again",
            self.name,
            order.client_order_id,
            info.status,
            extra={"order": order.client_order_id, "venue": self.name},
        )
        await self._sync(tracked, info)

    async def _sync(self, tracked: _Tracked, info: OrderInfo | None = None) -> None:
        """Report what changed at the exchange for one order."""
        order_id = tracked.order.client_order_id
        async with tracked.lock:
            if self._tracked.get(order_id) is not tracked:
                return  # finished meanwhile
            if info is None:
                info = await self._lookup(tracked.market, order_id)
                if info is None:
                    log.error("%s: tracked order %s vanished", self.name, order_id)
                    self._untrack(order_id)
                    self._report(OrderCancelledReport(order_id, self._now()))
                    return
            tracked.exchange_id = info.order_id
            self._client_ids[info.order_id] = order_id
            if not tracked.accepted:
                tracked.accepted = True
                if info.status != "REJECTED":
                    self._report(OrderAcceptedReport(order_id, self._now(), info.order_id))
            step = self._step(tracked.market)
            if info.executed > tracked.reported + step / 2:
                await self._report_fills(tracked, info, step)
            if info.status == "FILLED":
                self._untrack(order_id)
            elif info.status in CANCELLED_STATUSES:
                self._untrack(order_id)
                if info.executed == 0 and await self._stop_took_over(
                    tracked.market, order_id, info
                ):
                    return  # the stop leg of its OCO carries the exit now
                self._report(OrderCancelledReport(order_id, self._now()))
            elif info.status == "REJECTED":
                self._untrack(order_id)
                self._report(OrderRejectedReport(order_id, self._now(), f"{self.name} rejected"))

    async def _report_fills(self, tracked: _Tracked, info: OrderInfo, step: float) -> None:
        trades = await self._retry.call(
            f"fills of {info.client_order_id}",
            self.client.fetch_my_trades,
            tracked.market,
            None,
            None,
            {"orderId": info.order_id},
        )
        fresh = [trade_info(t, f"{self.name}: fills of {info.client_order_id}") for t in trades]
        fresh = [t for t in fresh if t["id"] not in tracked.fill_ids]
        fresh.sort(key=lambda t: (t["timestamp"], trade_id_order(t["id"])))
        for index, trade in enumerate(fresh):
            tracked.fill_ids.add(trade["id"])
            tracked.reported += trade["amount"]
            spec = self.client.market(tracked.market)
            received = received_quantity(spec, info.side, trade)
            tracked.received += received
            tracked.received_quote += received * trade["price"]
            # Counted by the book before this process tracked the order: the book's own
            # unit (net coins) within less than one lot step of what it said is left.
            if (tracked.skip_base and tracked.received <= tracked.skip_base + step * 0.999) or (
                tracked.skip_quote and tracked.received_quote <= tracked.skip_quote * (1 + 1e-9)
            ):
                continue
            last = index == len(fresh) - 1
            complete = info.status == "FILLED" and last
            self._report(
                OrderFilledReport(
                    client_order_id=info.client_order_id,
                    time_ms=trade["timestamp"],
                    price=trade["price"],
                    quantity=received,
                    fee=fee_in_quote(spec, trade, self.config.fees),
                    liquidity=Liquidity.MAKER if trade["maker"] else Liquidity.TAKER,
                    fill_id=trade["id"],
                    complete=complete,
                )
            )

    # -- polling ---------------------------------------------------------------------------

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name=f"poll-{self.name}"
            )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("%s: order status poll failed: %s", self.name, error)

    async def poll_once(self) -> None:
        """One round of status polling over every tracked order."""
        markets = sorted({tracked.market for tracked in self._tracked.values()})
        for market in markets:
            raw = await self._retry.call(
                f"open orders of {market}", self.client.fetch_open_orders, market
            )
            open_now = {
                info.client_order_id: info
                for info in (order_info(item.get("info"), "open orders") for item in raw)
            }
            step = self._step(market)
            for tracked in [t for t in self._tracked.values() if t.market == market]:
                info = open_now.get(tracked.order.client_order_id)
                moved = info is None or info.executed > tracked.reported + step / 2
                if moved or not tracked.accepted:
                    await self._sync(tracked, info)

    # -- plumbing --------------------------------------------------------------------------

    async def _market(self, symbol: str) -> str | None:
        """ccxt's symbol for the exchange's `symbol` (BTCUSDT -> BTC/USDT), markets loaded
        once (with retries); None if the exchange does not list it."""
        if self._markets is None:
            markets = await self._retry.call("load markets", self.client.load_markets)
            self._markets = {
                str(spec["id"]): name
                for name, spec in markets.items()
                if isinstance(spec, dict) and spec.get("spot")
            }
        return self._markets.get(symbol)

    async def _lookup(self, market: str, client_order_id: str) -> OrderInfo | None:
        try:
            raw = await self._retry.call(
                f"query {client_order_id}",
                self.client.fetch_order,
                None,
                market,
                {"origClientOrderId": client_order_id},
            )
        except ccxt.OrderNotFound:
            return None
        return order_info(raw.get("info"), f"{self.name}: order {client_order_id}")

    async def _client_id(self, market: str, exchange_order_id: str) -> str | None:
        known = self._client_ids.get(exchange_order_id)
        if known is not None:
            return known
        try:
            raw = await self._retry.call(
                f"query order {exchange_order_id}",
                self.client.fetch_order,
                exchange_order_id,
                market,
            )
        except ccxt.OrderNotFound:
            return None
        info = order_info(raw.get("info"), f"{self.name}: order {exchange_order_id}")
        self._client_ids[exchange_order_id] = info.client_order_id
        return info.client_order_id

    def _step(self, market: str) -> float:
        precision = self.client.market(market)["precision"]["amount"]
        return float(precision) if precision else 1e-8

    def _reject(self, order_id: str, message: str) -> None:
        self._finish(order_id)
        log.warning("%s: order %s rejected: %s", self.name, order_id, message)
        self._report(OrderRejectedReport(order_id, self._now(), message))

    def _untrack(self, order_id: str) -> None:
        self._tracked.pop(order_id, None)
        self._finish(order_id)

    def _finish(self, order_id: str) -> None:
        self._done[order_id] = None
        if len(self._done) > DONE_MEMORY:
            self._done.popitem(last=False)

    def _now(self) -> int:
        market = self._clock() if self._clock is not None else None
        return market if market is not None else time.time_ns() // 1_000_000

    def _report(self, report: BrokerReport) -> None:
        if self._sink is None:
            log.warning("%s: report %s dropped, no sink bound", self.name, report)
            return
        self._sink(report)
