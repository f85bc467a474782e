"""The live engine: many bots in one asyncio process, configured by the bots table only.

`Engine` wires the parts (feed, trading core, recorder, outbox, broker, model watcher, bot
manager) and owns their lifecycle; it holds no global state, so several engines can run in
one process (tests do). Its steps live beside it: `startup` (database ready, reconciliation
announced), `loops` (the periodic tasks), `health` (state, status and heartbeats),
`shutdown` (trading brought to rest, writes flushed before the leases go).

`start` always reconciles first, whether the last stop was clean or a crash: database up and
migrated, bots and their saved books loaded, working orders agreed with the broker; only
then does it subscribe to market data and trade. `stop` takes no new entries, stops the
feed, flushes every write and marks bots and engine stopped.

On PostgreSQL the engine runs only the bots it leases (live/engine/leases.py): leases are
claimed and renewed with the bot poll and the heartbeat, a bot gained later starts through
the same recovery (saved book, venue reconciled) before any entry, a bot lost is dropped
without a write, and every bot write carries the lease epoch the database checks. On SQLite
it owns every bot and holds the single-engine lock instead.

What the control API needs is here: `status()` / `bot_status(name)` (frozen snapshots),
`metrics()` (flat counters), `start_bot` / `stop_bot` (written to the bots table, applied
at once), the kill switch (`engage_kill_switch` cancels every pending entry and blocks new
ones, in every engine that reads the table, until `release_kill_switch`), `operator` (close
one position, move open positions' barriers: live/engine/operator.py), and `bus` (the
in-process event bus: subscribe, or read `bus.recent()`). All of them are called from the
engine's own event loop (an API served by uvicorn in the same loop). An instance is started
once and stopped once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from live.brokers import Broker
from live.engine.bot import BotRow
from live.engine.bot_manager import BotManager, FeedSubscriptions
from live.engine.config import EngineConfig, default_engine_id
from live.engine.control import KillSwitch
from live.engine.core import TradingCore
from live.engine.event_sink import emit_event
from live.engine.events import EventBus
from live.engine.evidence import EvidenceRecorder
from live.engine.features import NoBackfill
from live.engine.health import EngineHealth
from live.engine.heartbeats import engine_metrics
from live.engine.journal import WriteJournal, journal_path
from live.engine.leases import LeaseKeeper
from live.engine.listing import SymbolListing
from live.engine.loops import Loops
from live.engine.model_guard import ModelGuard
from live.engine.model_watcher import ActiveModel, ModelSlot, ModelWatcher
from live.engine.operator import OperatorActions
from live.engine.persistence import BotWrite
from live.engine.quality import QualityMonitor
from live.engine.recorder import EngineDatabase, Recorder, describe
from live.engine.recovery import ReconcileReport, SavedState, read_saved, read_snapshot
from live.engine.shutdown import bring_trading_to_rest, flush_and_release
from live.engine.single_engine import EngineAlreadyRunningError, SingleEngineLock
from live.engine.startup import announce_reconciled, wait_for_database
from live.engine.status import BotStatusView, EngineState, EngineStatus
from live.engine.strategies import StrategyLibrary
from live.engine.strategy_watch import StrategyAssignError, StrategyReloads
from live.engine.takeovers import Takeovers
from live.engine.venue_check import VenueReconciler
from live.engine.venues import build_broker
from live.feeds import CallbackConsumer, FeedStatus, SecondCandles
from live.latency import LatencyHistograms
from tradepipe.domain import Candle
from tradepipe.position_controls import pending_requests

if TYPE_CHECKING:
    from live.engine.compose import EngineParts

__all__ = ["Engine", "StrategyAssignError"]

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, config: EngineConfig, parts: EngineParts) -> None:
        """Wire the engine on `parts` (chosen by live/engine/compose.py: `build_engine`)."""
        self.config = config
        self.engine_id = (config.engine_id or default_engine_id())[:64]
        self.feed = parts.feed
        self.bus = EventBus()
        self._build_storage(config)
        self._build_core(config, parts)
        # the state, why it is degraded, the status and the heartbeats
        self.health = EngineHealth(self.engine_id, self.core, self.feed, self.recorder, self.leases)
        self._build_models(config, parts)
        self._build_bots(config, parts)
        # Telegram, webhooks: fed synchronously, delivered by its own tasks (live/notify)
        self.notifications = parts.notifications
        if parts.notifications is not None:
            self.bus.subscribe(parts.notifications.on_engine_event)
            self.core.order_listeners.append(parts.notifications.on_order_events)
        self.loops = Loops(self.engine_id)
        self._recorder_task: asyncio.Task[None] | None = None
        self._poll_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._refused = False

    def _build_storage(self, config: EngineConfig) -> None:
        self.database = EngineDatabase(
            config.database_url, busy_timeout_ms=config.db_busy_timeout_ms
        )
        # writes the database cannot take survive a stop: replayed first at the next start
        self.journal = WriteJournal(journal_path(config))
        # PostgreSQL: this engine runs the bots it leases, every bot write fenced by epoch
        self.leases = LeaseKeeper(
            self.engine_id,
            enabled=self.database.shared,
            ttl_seconds=config.lease_ttl_seconds,
            max_bots=config.engine_max_bots,
        )
        self.recorder = Recorder(
            self.database,
            config,
            on_health=self._on_database_health,
            journal=self.journal,
            owner=self.engine_id if self.leases.enabled else None,
            fence=self.leases.epoch if self.leases.enabled else None,
            on_refused=self._on_write_refused,
        )
        self.database_lock = SingleEngineLock(config.database_url, self.engine_id)

    def _build_core(self, config: EngineConfig, parts: EngineParts) -> None:
        clock = parts.clock
        # the core's own event sink, for the parts the core is built on
        emit = functools.partial(emit_event, self.recorder, self.bus)
        # paper, or each bot's exchange venue (its mode and credentials): live/engine/venues.py
        broker = parts.broker or build_broker(
            config, clock=clock.now, rows=self._bot_rows, on_event=emit
        )
        self.evidence = EvidenceRecorder(
            store_root=config.market_data_dir if config.record_candles else None,
            decision_root=config.decision_log_dir if config.record_decisions else None,
            exchange=config.record_exchange,
            retention_days=config.decision_retention_days,
            queue_size=config.evidence_queue_size,
            flush_seconds=config.evidence_flush_seconds,
            on_event=emit,
        )
        recording = config.record_candles and config.record_decisions
        self.quality = QualityMonitor(
            decision_root=config.decision_log_dir if recording else None,
            market_data_root=config.market_data_dir if recording else None,
            exchange=config.record_exchange,
            tracking_uri=config.mlflow_tracking_uri,
            window_seconds=config.quality_window_seconds,
            market_now_ms=clock.now,
        )
        repair = parts.backfill
        warm = not isinstance(repair, NoBackfill) and config.warmup_from_exchange
        records = self.evidence.records_candles or self.evidence.records_decisions
        self.core = TradingCore(
            config,
            broker=broker,
            recorder=self.recorder,
            bus=self.bus,
            seconds=functools.partial(SecondCandles, backfill=repair),
            warmup=repair if warm else None,
            evidence=self.evidence if records else None,
            clock=clock,
        )
        self.latency = LatencyHistograms()  # for /metrics; owned here: one set per engine
        self.core.decision_listeners.append(self.latency.observe_decision)

    def _build_models(self, config: EngineConfig, parts: EngineParts) -> None:
        # the configured registry's versions are tried in a separate process before they
        # are loaded here (a model whose native code aborts must not abort the engine)
        self.model_checker = parts.checker
        self.watcher = ModelWatcher(
            parts.models,
            sample=self._model_sample,
            on_swap=self._on_model_swap,
            on_refused=self._on_model_refused,
            timeout_seconds=config.registry_timeout_seconds,
            checker=self.model_checker,
        )
        # champions judged against their guard rails after each quality refresh
        self.guard = ModelGuard(
            self.core,
            self.watcher,
            tracking_uri=config.mlflow_tracking_uri,
            database=self.database.read,
        )
        self.core.order_listeners.append(self.guard.on_order_events)

    def _build_bots(self, config: EngineConfig, parts: EngineParts) -> None:
        consumer = CallbackConsumer(self.core.on_trade, self.core.on_gap, self._on_feed_status)
        library = StrategyLibrary(
            config.strategies_dir,
            removal_grace_seconds=config.strategy_removal_grace_seconds,
            budget_seconds=config.strategy_smoke_budget_seconds,
        )
        self.bots = BotManager(
            self.core,
            library,
            self.watcher,
            FeedSubscriptions(parts.feed, consumer),
            self._read_saved,
            SymbolListing(config.rest_url, timeout_seconds=min(config.exchange_timeout_seconds, 5)),
        )
        self.strategies = StrategyReloads(
            self.core,
            library,
            self.bots,
            debounce_seconds=config.strategy_debounce_seconds,
            rescan_seconds=config.strategy_rescan_seconds,
            poll_bots=self.poll_bots,
        )
        self.kill_switch = KillSwitch(self.core, self.engine_id)
        # close one position, move barriers: the API's calls and the table's requests
        self.operator = OperatorActions(self.core, self.engine_id)
        self.venues = VenueReconciler(self.core, self.recorder, self.engine_id)
        self.takeovers = Takeovers(
            self.engine_id,
            self.core,
            self.leases,
            self.recorder,
            self.bots,
            self.venues,
            update_state=self.health.update,
        )

    # The parts built first hear of the ones built after them through these methods (the
    # recorder of takeovers, the broker and the evidence writer of the core's bots and
    # events, the model watcher of the bot manager): each is called only once all exist.

    def _on_write_refused(self, write: BotWrite) -> None:
        self.takeovers.on_write_refused(write)

    def _bot_rows(self) -> list[BotRow]:
        return [bot.row for bot in self.core.bots.values()]

    def _on_database_health(self, available: bool, error: str | None) -> None:
        self.health.on_database(available, error)

    def _on_model_refused(self, slot: ModelSlot, version: str, reason: str) -> None:
        self.bots.on_refused(slot, version, reason)

    async def _read_saved(self, ids: list[int]) -> dict[int, SavedState]:
        return await self.recorder.read(lambda session: read_saved(session, ids))

    @property
    def broker(self) -> Broker:
        return self.core.broker

    @property
    def state(self) -> EngineState:
        return self.health.state

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile, then trade. Waits (retrying) for a database that is not there yet."""
        self.health.state = EngineState.STARTING
        self.health.started_at = datetime.now(UTC)
        self._stopped.clear()
        try:
            self.database_lock.acquire()
        except EngineAlreadyRunningError:
            self._refused = True  # stop() then releases only what __init__ made
            raise
        if self.notifications is not None:
            self.notifications.start()
        # the strategy validation process starts while the database is migrated and the
        # journal replayed: a restart is seconds shorter
        warming = asyncio.create_task(asyncio.to_thread(self.strategies.warm_validator))
        snapshot = await wait_for_database(
            self.config, self.database, self.journal, self.recorder, self.leases
        )
        with contextlib.suppress(Exception):  # a failure shows at the first scan, with its cause
            await warming
        if self.notifications is not None:
            self.notifications.update_bots(snapshot.bots)
        self._recorder_task = asyncio.create_task(self.recorder.run(), name="recorder")
        self.health.state = EngineState.RECONCILING
        await self.strategies.first_scan()
        await self.bots.apply(self.leases.mine(snapshot), first=True)
        report = await self.venues.reconcile(act=True)
        # engaged while this engine was away: cancel the pending entries just re-registered
        self.kill_switch.follow(snapshot.kill_switch, read_after_seq=0)
        announce_reconciled(self.core, self.engine_id, report)
        self.venues.report_unknown(report)
        self.evidence.start()
        await self.feed.start()
        self._spawn_loops()
        self.health.following = True
        self.health.update()
        await self._beat()
        log.info(
            "engine %s running %d bots",
            self.engine_id,
            len(self.core.bots),
            extra={"engine_id": self.engine_id},
        )

    async def stop(self) -> None:
        """Graceful stop: no new entries, feed closed, state and bots flushed to the database."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.health.following = False
        self.health.state = EngineState.STOPPING
        self.core.set_trading(False)
        try:
            if self._refused:  # another engine's database: write nothing to it
                await self._close_resources()
            else:
                await self._shut_down()
        finally:
            self.database_lock.release()
            self.health.state = EngineState.STOPPED
            self._stopped.set()

    async def _shut_down(self) -> None:
        deadline = self.config.stop_timeout_seconds
        await self.loops.cancel()
        await bring_trading_to_rest(
            self.core, self.feed, self.bots, self.recorder, deadline=deadline
        )
        if not await self.evidence.close(deadline / 3):
            log.error("evidence writer still busy at stop: what it had queued is lost")
        self.core.emit(
            "engine_stopped", f"engine {self.engine_id} stopped", data={"engine_id": self.engine_id}
        )
        self.health.state = EngineState.STOPPED  # what the last heartbeat says
        self.health.publish_heartbeats()
        await flush_and_release(self.recorder, self._recorder_task, self.leases, deadline=deadline)
        if self.notifications is not None:  # what is queued gets a short chance to go out
            await self.notifications.close(min(5.0, deadline / 3))
        await self._close_resources()

    async def _close_resources(self) -> None:
        if self.model_checker is not None:
            await asyncio.to_thread(self.model_checker.close)
        await self.broker.close()
        self.core.guard.close()
        await self.core.seconds.aclose()
        self.database.dispose()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # -- loops -----------------------------------------------------------------------------

    def _spawn_loops(self) -> None:
        config, every = self.config, self.loops.every
        every("ticker", config.tick_seconds, self._tick)
        every("heartbeats", config.heartbeat_seconds, self._beat)
        if self.leases.enabled:  # renewed with the heartbeat, claimed bots started at once
            every("leases", config.heartbeat_seconds, self.poll_bots)
        every("bot-poll", config.bot_reload_seconds, self.poll_bots)
        every("models", config.model_poll_seconds, self.watcher.poll)
        self.loops.spawn(self.strategies.run(), "strategies")
        every("reconcile", config.reconcile_seconds, self.reconcile)
        if self.quality.enabled and config.quality_seconds > 0:
            every("quality", config.quality_seconds, self._judge_quality)

    async def reconcile(self) -> ReconcileReport:
        """The periodic pass: the venues' open orders and recent fills against the books
        and the database; what neither knows is reported once; nothing is sent."""
        return await self.venues.check()

    def _tick(self) -> None:
        self.core.tick()
        self.health.update()  # a symbol's silence shows only as time passes

    async def poll_bots(self) -> None:
        """Read the bots table (and the kill switch) and apply what changed."""
        async with self._poll_lock:
            read_after = self.recorder.durable_seq
            try:
                snapshot = await self.recorder.read(read_snapshot)
            except Exception as error:
                log.warning("cannot read the bots table: %s", error)
                return
            self.kill_switch.follow(snapshot.kill_switch, read_after_seq=read_after)
            if self.notifications is not None:
                self.notifications.update_bots(snapshot.bots)
            change = await self.takeovers.renew(snapshot)
            if change is None or not change.gained:
                await self.bots.apply(self.leases.mine(snapshot))
            else:
                await self.takeovers.start_gained(snapshot, change)
            await self._follow_requests()

    async def _follow_requests(self) -> None:
        """The operators' requests on open positions (tradepipe/position_controls.py)."""
        try:
            requests = await self.recorder.read(pending_requests)
        except Exception as error:
            log.warning("cannot read the operator requests: %s", describe(error))
            return
        self.operator.follow(requests)

    async def _beat(self) -> None:
        await self.health.count_broker_orders()
        for bot in list(self.core.bots.values()):
            before = bot.saved_strategy_state
            batch = self.core.batch(bot, [])  # takes the strategy's state (on_save)
            if batch.strategy_state is not None and batch.strategy_state != before:
                self.recorder.submit(batch)
        self.health.publish_heartbeats()

    # -- status ----------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        return self.health.status()

    def metrics(self) -> dict[str, float]:
        """Counters and gauges for /metrics (names without a prefix; totals end in _total)."""
        metrics = engine_metrics(
            self.core, self.feed.metrics(), self.recorder, self.evidence.metrics()
        )
        metrics.update(self.quality.metrics())
        metrics.update(self.guard.metrics())
        if self.notifications is not None:
            metrics.update(self.notifications.metrics())
        return metrics

    def bot_status(self, name: str) -> BotStatusView | None:
        return self.health.bot_status(name)

    def add_candle_listener(self, listener: Callable[[Candle], None]) -> None:
        """Every 1 s candle the engine builds, as it builds it (taps for tests, metrics)."""
        self.core.candle_listeners.append(listener)

    def _on_feed_status(self, status: FeedStatus) -> None:
        self.core.on_status(status)
        self.health.update()

    # -- control ---------------------------------------------------------------------------

    async def start_bot(self, name: str) -> BotStatusView | None:
        """Enable `name` in the bots table and start it now (BotError if unknown)."""
        return await self._set_enabled(name, True)

    async def stop_bot(self, name: str) -> BotStatusView | None:
        """Disable `name`: no new entries; its open positions are managed until flat."""
        return await self._set_enabled(name, False)

    async def _set_enabled(self, name: str, enabled: bool) -> BotStatusView | None:
        from tradepipe.bots import set_enabled

        await self.recorder.read(lambda session: set_enabled(session, name, enabled))
        await self.poll_bots()
        return self.bot_status(name)

    async def assign_strategy(self, bot: str, strategy: str) -> BotStatusView | None:
        """Run `strategy` in bot `bot` from now on (BotError: no such bot;
        StrategyAssignError: the strategy may not run it). The bot's open positions stay."""
        await self.strategies.assign(bot, strategy)
        return self.bot_status(bot)

    async def engage_kill_switch(self, reason: str, *, flatten: bool = False) -> int:
        """Block every new entry and cancel every pending one (in every engine reading the
        table) until released; with `flatten`, leave every open position at market too.
        Returns how many positions were cancelled or left."""
        return self.kill_switch.engage(reason, flatten=flatten)

    async def release_kill_switch(self) -> None:
        self.kill_switch.release()

    # -- models ----------------------------------------------------------------------------

    def _on_model_swap(self, slot: ModelSlot, previous: ActiveModel | None) -> None:
        self.bots.on_swap(slot, previous)
        self.guard.on_swap(slot)

    async def _judge_quality(self) -> None:
        """Live quality, then the champions' guard rails on it (both off the event loop)."""
        await self.quality.refresh()
        await self.guard.check(self.quality.latest)

    def _model_sample(self, slot: object) -> list[Candle]:
        """Recent candles of the bots that use `slot`, for the check of a new version."""
        for bot in self.core.bots.values():
            if bot.slot is slot or bot.shadow_slot is slot:
                pipeline = self.core.symbols.get(bot.symbol)
                frame = pipeline.timeframes.get(bot.row.timeframe) if pipeline else None
                if frame is not None and frame.history:
                    return list(frame.history)
        return []
