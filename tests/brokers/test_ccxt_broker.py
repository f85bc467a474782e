"""The ccxt broker driving the real ccxt client against the exchange simulator: orders,
fills, cancels, the exchange's rules, idempotence across timeouts and restarts, retries
and refusals, and answers that make no sense."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from live.brokers import (
    BrokerOrder,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    OrderRejectedReport,
)
from live.brokers.exchange import MalformedResponseError
from live.replay.exchange import Fault, FaultKind
from tests.brokers.helpers import SYMBOL, Aio, account, venue
from tradepipe.domain import Side
from tradepipe.enums import OrderType
from tradepipe.orders import Liquidity


def market_buy(order_id: str = "alpha-1-en", quote: float = 100.0) -> BrokerOrder:
    return BrokerOrder(order_id, SYMBOL, Side.BUY, OrderType.MARKET, None, None, quote)


def limit(order_id: str, side: Side, price: float, quantity: float) -> BrokerOrder:
    return BrokerOrder(order_id, SYMBOL, side, OrderType.LIMIT, price, quantity)


def test_a_market_entry_fills_with_the_exchange_trade_id_and_quote_fee(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(market_buy())
            accepted = v.of(OrderAcceptedReport)
            assert len(accepted) == 1 and accepted[0].exchange_order_id
            [fill] = v.of(OrderFilledReport)
            [exchange_trade] = v.exchange.account.trades
            assert fill.fill_id == str(exchange_trade.trade_id)
            # 100 USDT at 50,000 buys 0.002 (lot 0.00001); Binance keeps 0.1 % of the coins
            assert exchange_trade.quantity == Decimal("0.002")
            assert fill.quantity == pytest.approx(0.001998)  # what the account received
            assert fill.price == 50_000.0 and fill.complete
            assert fill.fee == pytest.approx(0.1) and fill.liquidity is Liquidity.TAKER
            # ccxt follows the exchange's clock, so signed timestamps stay within recvWindow
            assert any(r.path == "/api/v3/time" for r in v.exchange.requests)

    aio.run(scenario())


def test_a_resting_limit_fills_at_its_price_and_a_take_profit_can_be_cancelled(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.0, 0.002))
            assert v.of(OrderAcceptedReport) and not v.of(OrderFilledReport)
            v.market(49_850.0, 1)  # trades through the limit: the resting order fills
            await aio.eventually(lambda: v.of(OrderFilledReport), "the polled fill")
            [fill] = v.of(OrderFilledReport)
            assert fill.price == 49_900.0 and fill.liquidity is Liquidity.MAKER
            await v.broker.place(limit("alpha-1-tp", Side.SELL, 50_500.0, fill.quantity))
            assert len(await v.broker.open_orders()) == 1
            await v.broker.cancel(SYMBOL, "alpha-1-tp")
            assert v.of(OrderCancelledReport, "alpha-1-tp")
            assert await v.broker.open_orders() == []
            assert float(v.exchange.account.balances["BTC"][0]) == pytest.approx(fill.quantity)

    aio.run(scenario())


def test_partial_fills_are_reported_one_trade_at_a_time(aio: Aio) -> None:
    async def scenario() -> None:
        funded = account()
        funded.fill_parts = 2
        async with venue(funded) as v:
            v.market(50_000.0)
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.0, 0.002))
            v.market(49_900.0, 1)
            await aio.eventually(lambda: v.of(OrderFilledReport), "the first part")
            v.market(49_890.0, 2)
            await aio.eventually(lambda: len(v.of(OrderFilledReport)) == 2, "the second part")
            first, second = v.of(OrderFilledReport)
            assert (first.complete, second.complete) == (False, True)
            assert first.fill_id != second.fill_id
            assert first.quantity + second.quantity == pytest.approx(0.002 * 0.999)

    aio.run(scenario())


def test_quantity_and_price_follow_the_exchange_precision(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.123456, 0.0012345678))
            [sent] = v.exchange.placements("alpha-1-en")
            assert (sent.params["price"], sent.params["quantity"]) == ("49900.12", "0.00123")
            assert v.of(OrderAcceptedReport) and not v.of(OrderRejectedReport)

    aio.run(scenario())


def test_an_order_under_the_minimum_notional_is_rejected_before_sending(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.0, 0.00005))  # ~2.5 USDT
            [rejected] = v.of(OrderRejectedReport)
            assert "NOTIONAL" in rejected.message and "alpha-1-en" in rejected.message
            assert v.exchange.placements() == []

    aio.run(scenario())


def test_an_entry_the_balance_cannot_pay_for_is_rejected(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue(account(usdt=50.0)) as v:
            v.market(50_000.0)
            await v.broker.place(market_buy(quote=100.0))
            [rejected] = v.of(OrderRejectedReport)
            assert "insufficient USDT balance" in rejected.message
            assert v.exchange.placements() == []

    aio.run(scenario())


def test_an_exchange_refusal_is_reported_with_its_reason_and_never_retried(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            v.exchange.inject(Fault(FaultKind.REJECT, message="Market is closed."))
            await v.broker.place(market_buy())
            [rejected] = v.of(OrderRejectedReport)
            assert rejected.message == "testnet:SIM refused: Market is closed."
            assert len(v.exchange.placements()) == 1
            await v.broker.place(market_buy())  # the engine never re-sends a finished id
            assert len(v.exchange.placements()) == 1

    aio.run(scenario())


@pytest.mark.parametrize("fault", [FaultKind.HANG_AFTER_ACCEPT, FaultKind.DROP_AFTER_ACCEPT])
def test_a_lost_answer_after_acceptance_finds_the_order_instead_of_a_duplicate(
    aio: Aio, fault: FaultKind
) -> None:
    async def scenario() -> None:
        async with venue(timeout_seconds=0.5) as v:
            v.market(50_000.0)
            v.exchange.inject(Fault(fault, hang_seconds=3.0))
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.0, 0.002))
            assert len(v.exchange.placements("alpha-1-en")) == 1
            assert len(v.exchange.orders_with_id("alpha-1-en")) == 1
            [accepted] = v.of(OrderAcceptedReport)
            [stored] = v.exchange.orders_with_id("alpha-1-en")
            assert accepted.exchange_order_id == str(stored.order_id)
            assert v.broker.requests_retried >= 1

    aio.run(scenario())


def test_server_errors_are_retried_until_the_order_is_placed_once(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            v.exchange.inject(Fault(FaultKind.SERVER_ERROR, times=2))
            await v.broker.place(market_buy())
            assert len(v.exchange.placements()) == 3
            assert len(v.exchange.orders_with_id("alpha-1-en")) == 1
            assert v.of(OrderFilledReport)

    aio.run(scenario())


def test_a_rate_limit_is_retried_no_sooner_than_retry_after(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            waits: list[float] = []

            async def recording_sleep(seconds: float) -> None:
                waits.append(seconds)
                await asyncio.sleep(0)

            v.broker.sleep = recording_sleep
            v.market(50_000.0)
            v.exchange.inject(Fault(FaultKind.RATE_LIMIT, retry_after_seconds=2))
            await v.broker.place(market_buy())
            # the policy's own delays are at most 0.05 s: the 2 s wait is the exchange's
            assert waits == [2.0]
            assert len(v.exchange.orders_with_id("alpha-1-en")) == 1
            assert v.of(OrderFilledReport)

    aio.run(scenario())


def test_the_venue_away_after_every_attempt_is_unavailable_not_rejected(aio: Aio) -> None:
    from live.brokers import BrokerUnavailableError

    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(market_buy("alpha-1-en", 20.0))  # markets loaded
            v.exchange.inject(Fault(FaultKind.SERVER_ERROR, method="GET", times=100))
            with pytest.raises(BrokerUnavailableError, match="failed 5 times"):
                await v.broker.place(market_buy("alpha-2-en", 20.0))
            assert not v.of(OrderRejectedReport)

    aio.run(scenario())


def test_a_restarted_broker_adopts_a_filled_order_instead_of_placing_it_again(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(market_buy())
            first_fill = v.of(OrderFilledReport)[0]
            v.reports.clear()
            restarted = v.new_broker()
            try:
                await restarted.place(market_buy())  # the engine re-sends after a crash
            finally:
                await restarted.close()
            assert len(v.exchange.placements()) == 1
            [fill] = v.of(OrderFilledReport)
            assert fill.fill_id == first_fill.fill_id  # the same trade, reported once more

    aio.run(scenario())


def test_a_resent_part_filled_order_reports_only_what_the_book_has_not_counted(aio: Aio) -> None:
    async def scenario() -> None:
        funded = account()
        funded.fill_parts = 2
        async with venue(funded) as v:
            v.market(50_000.0)
            await v.broker.place(limit("alpha-1-en", Side.BUY, 49_900.0, 0.002))
            v.market(49_900.0, 1)
            await aio.eventually(lambda: v.of(OrderFilledReport), "the first part")
            [counted] = v.of(OrderFilledReport)
            await v.broker.close()  # the engine dies having counted the first part
            v.reports.clear()
            v.market(49_890.0, 2)  # the rest fills while nobody watches
            restarted = v.new_broker()
            try:
                # the book sends what it has left
                left = 0.002 - counted.quantity
                await restarted.place(limit("alpha-1-en", Side.BUY, 49_900.0, left))
            finally:
                await restarted.close()
            [fill] = v.of(OrderFilledReport)
            assert fill.quantity == pytest.approx(0.001 * 0.999) and fill.complete
            assert len(v.exchange.placements()) == 1

    aio.run(scenario())


def test_recent_fills_name_the_client_order_ids(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(market_buy())
            fills = await v.broker.recent_fills([SYMBOL], 0)
            assert [f.client_order_id for f in fills] == ["alpha-1-en"]
            assert fills[0].fill_id == v.of(OrderFilledReport)[0].fill_id

    aio.run(scenario())


def test_a_malformed_answer_is_a_clear_error(aio: Aio) -> None:
    async def scenario() -> None:
        async with venue() as v:
            v.market(50_000.0)
            await v.broker.place(market_buy())
            v.exchange.inject(Fault(FaultKind.MALFORMED, method="GET", path="/api/v3/openOrders"))
            with pytest.raises(MalformedResponseError, match="open orders"):
                await v.broker.open_orders()

    aio.run(scenario())


def test_wrong_credentials_are_a_broker_error_naming_the_venue(aio: Aio) -> None:
    from live.brokers import BrokerError
    from live.brokers.ccxt_broker import CcxtBroker
    from tests.brokers.helpers import exchange_config

    async def scenario() -> None:
        async with venue() as v:
            wrong = CcxtBroker(
                exchange_config(v.exchange.url), api_key="simkey_0123456789abcdef", secret="nope"
            )
            try:
                with pytest.raises(BrokerError, match=r"testnet:SIM: credentials refused"):
                    await wrong.open_orders()
            finally:
                await wrong.close()

    aio.run(scenario())
