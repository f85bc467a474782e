"""The trading core: every change to books happens here, in synchronous steps.

A *step* is one input handled to the end: a trade, a clock tick, a broker report, a 1 s
candle released by a backfill. Inside a step nothing awaits, so steps never interleave
and need no locks; what a step produced (state machine events per bot, fills, closed
candles) is collected in a `Step` and, at its end, decided upon (`decisions.decide`) and
committed: one recorder write per bot touched (events, position snapshots, the book), then
the broker commands those events call for, each after its write (see `outbox`).

A trade, in this order: the paper broker matches it (fills are reports, applied at once),
every book of the symbol sees its price and time (stops, maker and holding timeouts), then
the 1 s candle aggregator takes it; candles it closes run the per-candle pipeline.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from live.brokers import (
    Broker,
    BrokerOrder,
    BrokerReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
)
from live.engine.bot import BotRuntime, StrategyFailure
from live.engine.clock import Clock, MarketClock
from live.engine.config import EngineConfig
from live.engine.decisions import decide
from live.engine.event_sink import emit_event
from live.engine.events import EventBus, publish_order_events
from live.engine.evidence import EvidenceRecorder
from live.engine.features import SymbolPipeline
from live.engine.guard import CallGuard
from live.engine.outbox import BrokerCommand, Outbox
from live.engine.persistence import BotBatch, BotStatusWrite, FillRecord
from live.engine.recorder import Recorder
from live.engine.risk_gate import book_step, count_report, halt_reason, on_events, on_venue_answer
from live.engine.shadow import ShadowRunner
from live.engine.status import BotRunState, BotStatusView, KillSwitchState
from live.engine.step import CoreMetrics, Step
from live.engine.warmup import FeatureWarmup
from live.feeds import CandleBackfill, FeedStatus, Gap, SecondCandles
from tradepipe.domain import Candle, Trade
from tradepipe.enums import ExitReason, OrderRole, PositionStatus
from tradepipe.orders import (
    Event,
    OrderCancelRequested,
    OrderFilled,
    OrderPlaced,
    Position,
    parse_client_order_id,
)
from tradepipe.secrets import redact

__all__ = ["CoreMetrics", "Step", "TradingCore"]

log = logging.getLogger(__name__)


class TradingCore:
    """Books, pipelines and the steps that change them (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        broker: Broker,
        recorder: Recorder,
        bus: EventBus,
        seconds: Callable[[Callable[[Candle], None]], SecondCandles],
        warmup: CandleBackfill | None = None,
        evidence: EvidenceRecorder | None = None,
        clock: Clock | None = None,
        commands: Callable[[BrokerCommand], None] | None = None,
    ) -> None:
        self.config = config
        # what the engine saw and decided, for the review (None: nothing recorded)
        self.evidence = evidence
        self.clock: Clock = clock if clock is not None else MarketClock()
        self.broker = broker
        self.recorder = recorder
        self.bus = bus
        self.outbox = Outbox(
            broker,
            recorder,
            config,
            on_not_sent=self._not_sent,
            on_answer=functools.partial(on_venue_answer, self),
        )
        # where the broker commands of each step go, after its write: the outbox (or a test's list)
        self._send = commands if commands is not None else self.outbox.push
        # challengers on paper beside the champions: never through `broker` (shadow.py)
        self.shadows = ShadowRunner(
            config, clock=self.clock.now, submit=recorder.submit, emit=self.emit
        )
        self.seconds = seconds(self._on_second)
        # the state the core owns: read through the properties, changed only by its methods
        self._symbols: dict[str, SymbolPipeline] = {}
        self._bots: dict[str, BotRuntime] = {}
        self._kill_switch = KillSwitchState(False)
        self._trading = False  # False while starting, reconciling, degraded or stopping
        self.feed_status: FeedStatus | None = None
        self.metrics = CoreMetrics()
        self.guard = CallGuard()  # strategy decisions under their time budget
        self.candle_listeners: list[Callable[[Candle], None]] = []
        # (strategy, ns from the step's input to the bot's decision) per decision: latency
        self.decision_listeners: list[Callable[[str, int], None]] = []
        # (bot, symbol, events) after each step's write: the bus, notifications; must not raise
        self.order_listeners: list[Callable[[str, str, list[Event]], None]] = [
            functools.partial(publish_order_events, bus)
        ]
        self.stopped_bots: list[BotStatusView] = []  # stopped since the last heartbeat
        # symbol -> (price, market time ms) of its last trade: published with the heartbeat
        self.last_trades: dict[str, tuple[float, int]] = {}
        self._step: Step | None = None
        # a new timeframe's features warmed up from the exchange's earlier candles (or None)
        self.warmup = (
            None if warmup is None else FeatureWarmup(config, self.clock, warmup, self.emit)
        )
        broker.bind(self.on_report)

    # -- the state it owns ------------------------------------------------------------------

    @property
    def bots(self) -> Mapping[str, BotRuntime]:
        """The running bots by name (read-only: `add_bot`, `remove_bot` change it)."""
        return MappingProxyType(self._bots)

    @property
    def symbols(self) -> Mapping[str, SymbolPipeline]:
        """The candle pipeline of each symbol a bot runs on (`join_pipeline`, `leave_pipeline`)."""
        return MappingProxyType(self._symbols)

    @property
    def trading(self) -> bool:
        """Whether entries may be opened at all (the engine's health, `set_trading`)."""
        return self._trading

    @property
    def kill_switch(self) -> KillSwitchState:
        return self._kill_switch

    def set_trading(self, trading: bool) -> None:
        self._trading = trading

    def add_bot(self, bot: BotRuntime) -> None:
        """Run `bot` from the next step on (replacing a bot of the same name)."""
        self._bots[bot.name] = bot

    def remove_bot(self, name: str) -> BotRuntime | None:
        """Stop stepping bot `name`: no decision and no order from here on; the bot removed."""
        return self._bots.pop(name, None)

    def join_pipeline(self, bot: BotRuntime) -> None:
        """Put `bot` among the bots of its symbol's pipeline (created for its first bot)."""
        pipeline = self._symbols.get(bot.symbol)
        if pipeline is None:
            pipeline = self._symbols[bot.symbol] = self.new_pipeline(bot.symbol)
        pipeline.bots.add(bot.name)

    def leave_pipeline(self, bot: BotRuntime) -> bool:
        """Take `bot` out of its symbol's pipeline; True if that was the symbol's last bot
        (the pipeline is gone: its feed subscription may go too)."""
        pipeline = self._symbols.get(bot.symbol)
        if pipeline is None:
            return False
        pipeline.leave(bot.name)
        bot.features = None
        if not pipeline.bots:
            del self._symbols[bot.symbol]
        return not pipeline.bots

    def engage_kill_switch(self, state: KillSwitchState) -> int:
        """Block every new entry and close every pending one (with `state.flatten`, every
        open position too, at market), in one step; how many positions were closed."""
        self._kill_switch = state
        cancelled = exited = 0
        with self.step() as step:
            for bot in self._bots.values():
                for position in list(bot.book.positions):
                    pending = position.status is PositionStatus.PENDING
                    if not pending and not state.flatten:
                        continue  # its own exits protect it
                    time_ms = self.clock.now_or(position.entry.updated_at_ms)
                    events = bot.book.close_position(position.seq, time_ms, ExitReason.MANUAL)
                    step.add(bot.name, events)
                    cancelled += pending
                    exited += not pending
        flattened = " and flattened" if state.flatten else ""
        data: dict[str, object] = {"reason": state.reason, "flatten": state.flatten}
        data |= {"pending_entries_cancelled": cancelled, "positions_exited": exited}
        message = f"kill switch engaged{flattened}: {state.reason}"
        self.emit("kill_switch_engaged", message, data=data)
        return cancelled + exited

    def release_kill_switch(self) -> None:
        self._kill_switch = KillSwitchState(False)
        self.emit("kill_switch_released", "kill switch released")

    # -- inputs: the feed -----------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        pipeline = self.symbols.get(trade.symbol)
        if pipeline is None:
            return
        self.clock.observe(trade.time_ms)
        pipeline.last_price = trade.price
        self.last_trades[trade.symbol] = (trade.price, trade.time_ms)
        self.metrics.trades += 1
        with self.step(trade.time_ms) as step:
            self.broker.on_trade(trade)
            for name in pipeline.bots:
                bot = self.bots.get(name)
                if bot is not None:
                    with self.isolated(bot, "managing its positions"):
                        step.add(name, bot.book.on_tick(trade.time_ms, trade.price))
            self.shadows.on_trade(trade, pipeline.bots)
            self.seconds.on_trade(trade)

    def on_gap(self, gap: Gap) -> None:
        log.warning(
            "feed gap in %s: %d trades missed, repairing candles",
            gap.symbol,
            gap.missing_trades,
            extra={"symbol": gap.symbol, "missing_trades": gap.missing_trades},
        )
        self.seconds.on_gap(gap)

    def on_status(self, status: FeedStatus) -> None:
        self.feed_status = status
        self.seconds.on_status(status)

    def _on_second(self, candle: Candle) -> None:
        pipeline = self.symbols.get(candle.symbol)
        if pipeline is None:
            return
        self.metrics.seconds += 1
        if self.evidence is not None:
            self.evidence.candle(candle)
        for listener in self.candle_listeners:
            listener(candle)
        rows = pipeline.on_second(candle)
        if rows:
            with self.step() as step:
                step.rows.extend(rows)

    # -- inputs: the clock and the broker -------------------------------------------------

    def tick(self) -> None:
        """Time passed without a trade: timeouts, and candles whose interval is over."""
        now = self.clock.now()
        if now is None:
            return
        with self.step(now) as step:
            for bot in self.bots.values():
                with self.isolated(bot, "managing its positions"):
                    step.add(bot.name, bot.book.on_tick(now))
            self.shadows.tick(now)
            closing = now - int(self.config.candle_close_grace_seconds * 1000)
            self.seconds.close_until(closing)
            repairing = self.seconds.pending_gaps()
            for symbol, pipeline in self.symbols.items():
                if symbol not in repairing:
                    step.rows.extend(pipeline.close_until(closing))

    def on_report(self, report: BrokerReport) -> None:
        self.metrics.reports += 1
        parsed = parse_client_order_id(report.client_order_id)
        bot = self.bots.get(parsed[0]) if parsed is not None else None
        if bot is None:
            self.metrics.unknown_reports += 1
            self.emit("anomaly", f"broker report for an order of no running bot: {report}")
            return
        with self.step(report.time_ms) as step:
            order_id, time_ms = report.client_order_id, report.time_ms
            if isinstance(report, OrderAcceptedReport):
                events = bot.book.on_accepted(order_id, time_ms)
                if report.exchange_order_id:
                    step.exchange_ids.setdefault(bot.name, {})[order_id] = report.exchange_order_id
            elif isinstance(report, OrderFilledReport):
                events = bot.book.on_fill(
                    order_id,
                    report.price,
                    time_ms,
                    quantity=report.quantity,
                    fee=report.fee,
                    liquidity=report.liquidity,
                    complete=report.complete,
                )
                if any(isinstance(event, OrderFilled) for event in events):
                    fill = FillRecord(
                        order_id, report.fill_id, report.price, report.quantity, report.fee, time_ms
                    )
                    step.fills.setdefault(bot.name, []).append(fill)
            elif isinstance(report, OrderCancelledReport):
                events = bot.book.on_cancelled(order_id, time_ms)
            else:
                events = bot.book.on_rejected(order_id, time_ms, report.message)
            count_report(self, bot.name, report)
            step.add(bot.name, events)

    def _not_sent(self, command: BrokerCommand, reason: str) -> None:
        bot = self.bots.get(command.bot)
        if bot is None:
            return
        with self.step() as step:
            time_ms = self.clock.now_or(step.time_ms)
            step.add(bot.name, bot.book.on_rejected(command.client_order_id, time_ms, reason))

    # -- steps ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, time_ms: int | None = None) -> Iterator[Step]:
        """The current step, or a new one committed when the block ends."""
        if self._step is not None:
            yield self._step
            return
        step = self._step = Step(time_ms if time_ms is not None else self.clock.now_or(0))
        try:
            yield step
            while step.rows:
                rows, step.rows = step.rows, []
                book_step(self, step)  # a close earlier in the step counts for its decisions
                decide(self, rows, step)
        finally:
            self._step = None
            self._commit(step)
            self.shadows.flush()

    def _commit(self, step: Step) -> None:
        for name, events in step.events.items():
            bot = self.bots.get(name)
            if bot is None:
                log.error("events of unknown bot %s dropped: %s", name, events)
                continue
            batch = None
            with self.isolated(bot, "recording its step"):  # never the other bots' writes
                on_events(self, bot, step.unbooked(name))  # closes count against its limits
                batch = self.batch(bot, events, step)
            if batch is None:
                continue
            seq = self.recorder.submit(batch)
            for listener in self.order_listeners:
                listener(bot.name, bot.symbol, events)
            for event in events:
                if isinstance(event, OrderPlaced):
                    position = bot.book.position(event.position_seq)
                    order = BrokerOrder.from_state(bot.symbol, event.order, position)
                    entry = event.order.role is OrderRole.ENTRY
                    command = BrokerCommand(
                        bot.name, bot.symbol, order.client_order_id, order, seq, entry
                    )
                    self._send(command)
                elif isinstance(event, OrderCancelRequested):
                    order_id = event.order.client_order_id
                    self._send(BrokerCommand(bot.name, bot.symbol, order_id, None, seq))

    def batch(self, bot: BotRuntime, events: list[Event], step: Step | None = None) -> BotBatch:
        """The recorder write of `bot` after `events`: final snapshots of the positions
        they touched, the fills, the serialized book and the strategy's state."""
        closed: dict[int, Position] = {}
        touched: list[int] = []
        for event in events:
            seq = event.position_seq if hasattr(event, "position_seq") else None
            if seq is not None and seq not in touched:
                touched.append(seq)
            position = getattr(event, "position", None)
            if isinstance(position, Position):
                closed[position.seq] = position
        positions = tuple(bot.book.position(seq) or closed[seq] for seq in touched)
        pipeline = self.symbols.get(bot.symbol)
        return BotBatch(
            bot_id=bot.row.id,
            bot=bot.name,
            events=tuple(events),
            positions=positions,
            fills=tuple(step.fills.get(bot.name, ())) if step else (),
            book=bot.saved_book(),
            strategy_state=self.strategy_state(bot),
            strategy_name=bot.loaded.name,
            strategy_hash=bot.strategy_hash,
            reference_price=pipeline.last_price if pipeline else None,
            exchange_ids=dict(step.exchange_ids.get(bot.name, {})) if step else {},
        )

    def strategy_state(self, bot: BotRuntime) -> dict[str, object] | None:
        if bot.state is BotRunState.ERROR:
            return None  # a failed strategy's state is not trusted: keep the last saved one
        try:
            state = bot.save_state()
        except StrategyFailure as failure:
            self.fail_bot(bot, str(failure))
            return None
        bot.saved_strategy_state = state
        return state

    def new_pipeline(self, symbol: str) -> SymbolPipeline:
        warm = self.warmup.warm_up if self.warmup is not None else None
        built = self.evidence.candle if self.evidence is not None else None
        return SymbolPipeline(symbol, self.config.candle_history, warm, built)

    # -- bots and events ------------------------------------------------------------------

    def accepting_entries(self, bot: BotRuntime) -> bool:
        return (
            self.trading
            and not self.kill_switch.engaged
            and self.recorder.available
            and bot.row.enabled
            and bot.state is BotRunState.RUNNING
            and halt_reason(self, bot) is None
        )

    def set_state(self, bot: BotRuntime, state: BotRunState, error: str | None = None) -> None:
        """Move `bot` to `state`; the bots table hears of it when its coarser status (or
        the error text) changes."""
        previous, previous_error = bot.state, bot.last_error
        bot.state, bot.last_error = state, None if error is None else redact(error)
        error = bot.last_error
        changed_status = previous.database_status is not state.database_status
        if changed_status or error != previous_error:
            write = BotStatusWrite(bot.row.id, state.database_status, error)
            self.recorder.submit(write)
        if previous is not state:
            log.info(
                "bot %s: %s -> %s",
                bot.name,
                previous.value,
                state.value,
                extra={"bot": bot.name, "state": state.value, "error": error},
            )

    def refresh_state(self, bot: BotRuntime) -> None:
        """Derive a live bot's state from what it is waiting for, if anything."""
        if bot.state in (BotRunState.ERROR, BotRunState.STOPPED):
            return
        if not bot.row.enabled or bot.row.symbol != bot.symbol:
            # disabled, or moving to another symbol once flat: no new entries meanwhile
            target = BotRunState.DISABLED
        elif bot.needs_model and bot.slot is not None and bot.slot.guarded is not None:
            guarded = bot.slot
            message = f"model {guarded.ref}: {guarded.guarded}"
            self.set_state(bot, BotRunState.MODEL_GUARDED, message)
            return
        elif bot.needs_model and (bot.slot is None or bot.slot.active is None):
            slot = bot.slot
            if slot is not None and slot.refusal is not None:
                # in error with the reason, but not isolated: a good version ends it
                self.set_state(bot, BotRunState.MODEL_ERROR, f"model {slot.ref}: {slot.refusal}")
                return
            target = BotRunState.WAITING_FOR_MODEL
        elif bot.features is None or not bot.features.ready:
            target = BotRunState.WARMING_UP
        else:
            target = BotRunState.RUNNING
        # a bot its max drawdown disabled keeps saying why in the bots table
        stopped = bot.risk.drawdown_halt if target is BotRunState.DISABLED else None
        error = stopped.message if stopped is not None else None
        if target is not bot.state or (error is not None and error != bot.last_error):
            self.set_state(bot, target, error)

    @contextlib.contextmanager
    def isolated(self, bot: BotRuntime, doing: str) -> Iterator[None]:
        """Run one bot's part of a step: an exception is this bot's error (reported once
        per distinct message), never the step's, so the other bots go on."""
        try:
            yield
        except Exception as error:
            message = f"bot {bot.name} failed while {doing}: {type(error).__name__}: {error}"
            if bot.state is not BotRunState.ERROR or bot.last_error != redact(message):
                log.exception("%s", message, extra={"bot": bot.name})
                self.fail_bot(bot, message)

    def fail_bot(self, bot: BotRuntime, message: str) -> None:
        """Isolate a bot whose strategy failed: no more decisions; open positions are still
        managed by the book (their exits do not depend on the strategy)."""
        self.set_state(bot, BotRunState.ERROR, message)
        self.emit("bot_error", message, bot.name, {"strategy_hash": bot.strategy_hash})

    def emit(
        self,
        kind: str,
        message: str,
        bot: str | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        emit_event(self.recorder, self.bus, kind, message, bot, data)
