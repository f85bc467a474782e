"""The engine's health: its lifecycle state, why it is degraded, and the snapshots that show
them (`status()` for the control API, the heartbeat rows for the dashboard).

While the engine trades, the state follows its parts: the database unavailable, the bot
leases not renewed in time or the feed not connected block every entry (DEGRADED, trading
off); a silent symbol degrades health by name while the bots of other symbols trade on. Only
changes while trading are events (the feed still connecting at start is not one).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

from live.brokers import Broker
from live.engine.core import TradingCore
from live.engine.heartbeats import bot_status_view, heartbeat_rows, published_prices
from live.engine.leases import LeaseKeeper
from live.engine.recorder import Recorder
from live.engine.status import BotStatusView, DatabaseHealth, EngineState, EngineStatus
from live.feeds import Feed, FeedState
from tradepipe.db.live_prices import LIVE_PRICES

__all__ = ["EngineHealth"]

log = logging.getLogger(__name__)


class EngineHealth:
    def __init__(
        self, engine_id: str, core: TradingCore, feed: Feed, recorder: Recorder, leases: LeaseKeeper
    ) -> None:
        self.engine_id = engine_id
        self.core, self.feed, self.recorder, self.leases = core, feed, recorder, leases
        self.state = EngineState.STOPPED
        self.degraded_reasons: tuple[str, ...] = ()  # why the state is degraded, if it is
        self.started_at: datetime | None = None
        # from the start of trading until the stop: only then does the state follow the parts
        self.following = False
        self._silent: tuple[str, ...] = ()
        self._broker_open_orders = 0

    @property
    def broker(self) -> Broker:
        return self.core.broker

    def update(self) -> None:
        """The state from the parts now; trading on only while nothing blocks entries."""
        if not self.following:
            return
        feed = self.feed.status()
        blocking = self._blocking(feed.state, feed.last_error)
        silent = [f"feed: {symbol} silent (no trades while connected)" for symbol in feed.silent]
        reasons = blocking + silent
        state = EngineState.DEGRADED if reasons else EngineState.RUNNING
        self.core.set_trading(not blocking)
        previous, self.state = self.state, state
        silence_changed = feed.silent != self._silent
        self._silent = feed.silent
        self.degraded_reasons = tuple(reasons)
        if previous in (EngineState.RUNNING, EngineState.DEGRADED) and (
            state is not previous or silence_changed
        ):
            message = "; ".join(reasons) or "database and feed available"
            self.core.emit(f"engine_{state.value}", message, data={"reasons": reasons})

    def _blocking(self, feed_state: FeedState, feed_error: str | None) -> list[str]:
        """What forbids any entry while it lasts."""
        blocking = []
        if not self.recorder.available:
            blocking.append(f"database: {self.recorder.last_error}")
        if not self.leases.fresh:
            blocking.append(
                f"bot leases not renewed for over {self.leases.ttl_seconds / 2:g} s (half the TTL)"
            )
        if feed_state is not FeedState.CONNECTED:
            blocking.append(f"feed {feed_state.value}: {feed_error or 'not connected'}")
        return blocking

    def on_database(self, available: bool, error: str | None) -> None:
        self.update()
        kind = "database_recovered" if available else "database_unavailable"
        log.log(logging.INFO if available else logging.ERROR, "%s: %s", kind, error or "ok")
        self.core.emit(
            kind,
            error or "database writes succeed again",
            data={"pending_writes": self.recorder.pending},
        )

    def status(self) -> EngineStatus:
        recorder = self.recorder
        bots = self.core.bots.values()
        return EngineStatus(
            engine_id=self.engine_id,
            state=self.state,
            started_at=self.started_at,
            market_time_ms=self.core.clock.now(),
            feed=self.feed.status(),
            degraded_reasons=self.degraded_reasons,
            database=DatabaseHealth(
                recorder.available, recorder.pending, recorder.last_error, recorder.failing_since
            ),
            kill_switch=self.core.kill_switch,
            broker=self.broker.name,
            broker_open_orders=self._broker_open_orders,
            bots=tuple(bot_status_view(self.core, bot) for bot in bots),
            leases=self.leases.status({bot.row.id: bot.name for bot in bots}),
        )

    def bot_status(self, name: str) -> BotStatusView | None:
        bot = self.core.bots.get(name)
        return None if bot is None else bot_status_view(self.core, bot)

    async def count_broker_orders(self) -> None:
        """The broker's open orders, shown beside the books' working ones (best effort)."""
        with contextlib.suppress(Exception):
            self._broker_open_orders = len(await self.broker.open_orders())

    def publish_heartbeats(self) -> None:
        """The engine's beat and its bots' (with the bots stopped since the last beat)."""
        metrics = self.core.metrics
        extra: dict[str, object] = {
            "trades": metrics.trades,
            "decisions": metrics.decisions,
            "entries": metrics.entries,
            "predict_calls": metrics.predict_calls,
        }
        extra[LIVE_PRICES] = published_prices(self.core)
        status = self.status()
        if status.leases is not None and status.leases.enabled:  # the dashboard's view
            extra["lease_epochs"] = status.leases.epochs
            extra["leases_fresh"] = status.leases.fresh
        started = self.started_at or datetime.now(UTC)
        stopped, self.core.stopped_bots = self.core.stopped_bots, []
        rows = heartbeat_rows(status, started, datetime.now(UTC), extra, stopped)
        self.recorder.set_heartbeats(rows)
