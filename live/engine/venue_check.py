"""The venues against the database, at start and periodically (`engine_reconcile_seconds`).

At start (`act=True`) working orders go back to their venue (looked up first, never placed
twice) and orders of this engine's bots that no book knows are cancelled; the periodic pass
sends nothing. Either way, what the database does not know at all (an order placed by hand,
a fill whose record was lost) is reported once, as a `reconcile_unknown` event and in the
log, never adopted or cancelled (`live.engine.recovery.reconcile_orders` does the matching).
"""

from __future__ import annotations

import logging
import time

from live.engine.core import TradingCore
from live.engine.recorder import Recorder
from live.engine.recovery import KnownOrders, ReconcileReport, read_known, reconcile_orders

__all__ = ["VenueReconciler"]

log = logging.getLogger(__name__)


class VenueReconciler:
    def __init__(self, core: TradingCore, recorder: Recorder, engine_id: str) -> None:
        self.core = core
        self.recorder = recorder
        self.engine_id = engine_id
        self._reported: set[str] = set()  # findings reported already

    async def reconcile(self, *, act: bool, bots: set[str] | None = None) -> ReconcileReport:
        """Every bot's book against its venue (or only `bots`': a takeover's)."""
        core = self.core
        lookback_ms = int(core.config.reconcile_fills_lookback_seconds * 1000)
        market_now = core.clock.now()  # a replayed day's fills are that day's
        now_ms = market_now if market_now is not None else time.time_ns() // 1_000_000
        return await reconcile_orders(
            [bot.book for bot in core.bots.values() if bots is None or bot.name in bots],
            core.broker,
            core.outbox,
            known=self._known_orders,
            fills_since_ms=now_ms - lookback_ms,
            act=act,
        )

    async def check(self) -> ReconcileReport:
        """The periodic pass: compare and report; nothing is sent."""
        report = await self.reconcile(act=False)
        self.report_unknown(report)
        return report

    async def _known_orders(self, client_order_ids: set[str]) -> KnownOrders:
        """What the database knows of these orders once every write so far is committed:
        a fill the engine has just applied is not "unknown" while its write is queued."""
        await self.recorder.wait_durable(self.recorder.last_submitted, 5.0)
        return await self.recorder.read(lambda session: read_known(session, client_order_ids))

    def report_unknown(self, report: ReconcileReport) -> None:
        """Each finding the database does not know, once: an event and a log line."""
        orders = [o for o in report.unknown_orders if o not in self._reported]
        fills = [f for f in report.unknown_fills if f not in self._reported]
        if not orders and not fills:
            return
        self._reported.update(orders + fills)
        message = (
            f"engine {self.engine_id}: the venue holds what the database does not know: "
            f"{len(orders)} open orders, {len(fills)} fills (reported, not adopted)"
        )
        log.warning("%s: %s", message, "; ".join(orders + fills))
        self.core.emit(
            "reconcile_unknown", message, data={"unknown_orders": orders, "unknown_fills": fills}
        )
