"""Recovery of protected take-profits, against a broker double: a take-profit goes back to
the venue with its position's stop (so missing protection is placed again), one whose
cancel was asked for goes without it, and the stop leg resting at the venue beside a
working take-profit is the book's, never an orphan to cancel or an unknown order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from live.brokers import BrokerOrder, VenueFill
from live.engine.outbox import BrokerCommand
from live.engine.recovery import reconcile_orders
from tests.brokers.helpers import Aio
from tests.orders.test_book_live import live, request
from tradepipe.domain import Side
from tradepipe.enums import ExitReason, OrderType


class VenueDouble:
    name = "double"

    def __init__(self, resting: list[BrokerOrder]) -> None:
        self.resting = resting

    async def open_orders(self) -> list[BrokerOrder]:
        return self.resting

    async def recent_fills(self, symbols: Iterable[str], since_ms: int) -> list[VenueFill]:
        return []


class Commands:
    def __init__(self) -> None:
        self.pushed: list[BrokerCommand] = []

    def push(self, command: BrokerCommand) -> None:
        self.pushed.append(command)


def test_take_profits_go_back_with_their_stop_unless_being_cancelled(aio: Aio) -> None:
    book = live()
    for seq in (1, 2):
        book.submit_entry(request(), 1_000)
        book.on_fill(f"bot1-{seq}-en", 100.0, 1_002)
        book.on_accepted(f"bot1-{seq}-tp", 1_003)
    book.close_position(2, 1_500, ExitReason.MANUAL)  # asks for the take-profit's cancel
    legs = [
        BrokerOrder(order_id, "BTCUSDT", Side.SELL, OrderType.LIMIT, price, 10.0)
        for order_id, price in (("bot1-1-tp", 110.0), ("bot1-1-vs", 90.0), ("bot1-2-tp", 110.0))
    ]
    commands = Commands()
    outbox: Any = commands
    report = aio.run(reconcile_orders([book], VenueDouble(legs), outbox))  # type: ignore[arg-type]
    sent = {c.client_order_id: c.order for c in commands.pushed if c.order is not None}
    assert sent["bot1-1-tp"] is not None and sent["bot1-1-tp"].stop_price == 90.0
    assert sent["bot1-2-tp"] is not None and sent["bot1-2-tp"].stop_price is None
    assert [c.client_order_id for c in commands.pushed if c.order is None] == ["bot1-2-tp"]
    assert report.orphans == () and report.unknown_orders == ()
