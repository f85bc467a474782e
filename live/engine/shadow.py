"""Shadow challengers: a `challenger` model traded on paper next to the champion, never sent.

A spec in shadow mode (`[promotion] mode = "shadow"`) promotes a passing version to the
`challenger` alias (tagged `shadow_started_at`) and leaves the champion. For every bot
consuming a model's `champion`, the engine also watches its `challenger` (the same watcher,
the same check process and sample check before use) and, once a challenger version is
active, runs a `ShadowBot` beside the bot:

- on each candle the bot decides, the challenger predicts on the very feature rows the
  champion saw (one batched call per challenger, as for champions), and a second instance
  of the bot's strategy (same file, same parameters, its own state) decides with that
  probability, seeing only the shadow positions;
- its entries go through a `PositionBook` of its own (the kernel order state machine, in
  live mode) whose orders go to a private `PaperBroker`: the paper broker's own fill rules,
  slippage and fees against the same public trades, reports applied at once. The engine's
  broker never hears of them, and nothing is written to `orders` or `positions`;
- what changed is written, at the end of each step, as a `ShadowWrite` to `shadow_runs` /
  `shadow_positions` (tradepipe/db/shadow.py), with the challenger version and strategy hash.

A challenger whose feature spec differs from the features the bot is fed is not shadowed
(the rows would not be the same): an event says so once. A shadow strategy that fails stops
that shadow run only (an event); the bot itself is untouched. When the challenger alias
moves, the new version starts a new run (a new row); positions of the old run are still
managed until flat; when the alias goes (promoted, or removed) no new shadow entries are
taken.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial

from live.brokers import (
    BrokerOrder,
    BrokerReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    PaperBroker,
    PaperConfig,
)
from live.engine.bot import BotRuntime, StrategyFailure
from live.engine.config import EngineConfig
from live.engine.model_watcher import ActiveModel, ModelSlot
from live.engine.persistence import ShadowWrite
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord
from tradepipe.domain import Candle, Trade
from tradepipe.enums import ExitReason
from tradepipe.orders import (
    EntryRequest,
    Event,
    InvalidOrderError,
    OrderCancelRequested,
    OrderPlaced,
    Position,
    PositionBook,
)
from tradepipe.strategy import Exit, ExitTargetError

__all__ = ["ShadowBot", "ShadowRunner", "ShadowWrite"]

log = logging.getLogger(__name__)


class ShadowBot:
    """One bot's shadow run of one challenger version (see the module docstring)."""

    def __init__(
        self,
        bot: BotRuntime,
        model_name: str,
        version: str,
        venue: PaperBroker,
        started_ms: int,
    ) -> None:
        self.model_name, self.version, self.started_ms = model_name, version, started_ms
        book = PositionBook.for_bot(
            bot.name, bot.symbol, bot.config, bot.book.fees, simulated=False
        )
        # a second strategy instance: the champion's own state is never touched
        self.runtime = BotRuntime(bot.row, bot.loaded, book)
        self.runtime.guard, self.runtime.call_budget_seconds = bot.guard, bot.call_budget_seconds
        self.venue = venue
        venue.bind(self._on_report)
        self.failed: str | None = None
        self.orders_sent = 0
        self._inbox: deque[Event] = deque()
        self._touched: dict[int, Position] = {}
        self._changed = True
        self._time_ms = started_ms

    @property
    def book(self) -> PositionBook:
        return self.runtime.book

    @property
    def flat(self) -> bool:
        return not self.book.positions

    def on_trade(self, trade: Trade) -> None:
        self.venue.on_trade(trade)  # fills first, as the engine's broker does
        self._handle(self.book.on_tick(trade.time_ms, trade.price), trade.time_ms)

    def tick(self, now_ms: int) -> None:
        self._handle(self.book.on_tick(now_ms), now_ms)

    def decide(
        self, candle: Candle, features: dict[str, float], probability: float, time_ms: int
    ) -> None:
        """The strategy with the challenger's probability; an entry goes to the shadow book."""
        if self.failed is not None:
            return
        self._changed, self._time_ms = True, time_ms
        self.book.on_closed_candle(candle)  # trailing stops first, as the bot's own book
        try:
            decision = self.runtime.decide(candle, features, probability)
        except StrategyFailure as failure:
            self.failed = str(failure)
            return
        if decision is None:
            return
        if isinstance(decision, Exit):  # as the bot's own Exit: at market, reason strategy
            try:
                targets = decision.targets(self.book.positions)
            except ExitTargetError as error:
                self.failed = f"invalid exit: {error}"
                return
            for seq in targets:
                self._handle(self.book.close_position(seq, time_ms, ExitReason.STRATEGY), time_ms)
            return
        try:
            request = EntryRequest.from_config(
                self.runtime.config,
                limit_price=decision.limit_price,
                trailing_stop_pct=decision.trailing_stop_pct,
                strategy_hash=self.runtime.strategy_hash,
                model_version=self.version,
                reason=decision.reason or None,
            )
        except InvalidOrderError as error:
            self.failed = f"invalid entry: {error}"
            return
        events = self.book.submit_entry(request, time_ms)
        if any(isinstance(event, OrderPlaced) for event in events):
            self.runtime.entries += 1
        self._handle(events, time_ms)

    def take_record(self) -> ShadowRecord | None:
        """What changed since the last call, or None."""
        if not self._changed:
            return None
        positions = tuple(_position_record(p) for p in self._touched.values())
        self._touched.clear()
        self._changed = False
        runtime = self.runtime
        return ShadowRecord(
            bot=runtime.name,
            model_name=self.model_name,
            model_version=self.version,
            symbol=runtime.symbol,
            strategy_hash=runtime.strategy_hash,
            started_ms=self.started_ms,
            time_ms=self._time_ms,
            decisions=runtime.decisions,
            entries=runtime.entries,
            positions=positions,
        )

    # -- the private paper venue -------------------------------------------------------

    def _handle(self, events: Iterable[Event], time_ms: int) -> None:
        """Apply `events`: orders to the private venue, whose reports (synchronous) come
        back through the inbox until nothing is left to do."""
        self._inbox.extend(events)
        while self._inbox:
            event = self._inbox.popleft()
            self._changed, self._time_ms = True, max(self._time_ms, time_ms)
            seq = getattr(event, "position_seq", None)
            position = getattr(event, "position", None)
            if isinstance(position, Position):
                self._touched[position.seq] = position
            elif seq is not None and (found := self.book.position(seq)) is not None:
                self._touched[seq] = found
            if isinstance(event, OrderPlaced):
                self.orders_sent += 1
                self.venue.submit(BrokerOrder.from_state(self.book.symbol, event.order))
            elif isinstance(event, OrderCancelRequested):
                self.venue.withdraw(self.book.symbol, event.order.client_order_id)
        for seq in list(self._touched):  # the final snapshot of every position still open
            found = self.book.position(seq)
            if found is not None:
                self._touched[seq] = found

    def _on_report(self, report: BrokerReport) -> None:
        book, order_id, time_ms = self.book, report.client_order_id, report.time_ms
        if isinstance(report, OrderAcceptedReport):
            events = book.on_accepted(order_id, time_ms)
        elif isinstance(report, OrderFilledReport):
            events = book.on_fill(
                order_id,
                report.price,
                time_ms,
                quantity=report.quantity,
                fee=report.fee,
                liquidity=report.liquidity,
                complete=report.complete,
            )
        elif isinstance(report, OrderCancelledReport):
            events = book.on_cancelled(order_id, time_ms)
        else:
            events = book.on_rejected(order_id, time_ms, report.message)
        self._inbox.extend(events)


def _position_record(position: Position) -> ShadowPositionRecord:
    return ShadowPositionRecord(
        seq=position.seq,
        side=position.side.value,
        status=position.status.value,
        quantity=position.quantity,
        entry_price=position.entry_price,
        exit_price=position.exit_price,
        placed_ms=position.created_at_ms,
        opened_ms=position.opened_at_ms,
        closed_ms=position.closed_at_ms,
        exit_reason=position.exit_reason.value if position.exit_reason else None,
        fees=position.fees,
        realised_pnl=position.gross_pnl,
    )


class ShadowRunner:
    """Every bot's shadow run; the trading core calls it inside its steps."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        clock: Callable[[], int | None],
        submit: Callable[[ShadowWrite], object],
        emit: Callable[[str, str, str | None, dict[str, object]], None],
    ) -> None:
        self._paper = PaperConfig(config.paper_slippage_bps, config.fees)
        self._clock = clock
        self._submit = submit
        self._emit = emit
        self.bots: dict[str, list[ShadowBot]] = {}  # bot -> its runs, the current one last
        self._reported: set[tuple[str, str, str]] = set()

    def run_for(
        self, bot: BotRuntime, slot: ModelSlot, active: ActiveModel, time_ms: int
    ) -> ShadowBot | None:
        """The bot's shadow run of `active`, started if new; None when it cannot be shadowed."""
        features = bot.features
        if features is None or features.spec.content_hash != active.spec.content_hash:
            self._once(bot, active, "its feature spec differs from the champion's features")
            return None
        runs = self.bots.setdefault(bot.name, [])
        current = runs[-1] if runs else None
        if current is not None and current.version == active.version and current.failed is None:
            return current
        if current is not None and current.version == active.version:
            self._once(bot, active, current.failed or "failed")
            return None
        venue = PaperBroker(self._paper, clock=self._clock)
        try:
            run = ShadowBot(bot, slot.name, active.version, venue, time_ms)
        except StrategyFailure as failure:  # the strategy cannot be created a second time
            self._once(bot, active, str(failure))
            return None
        runs.append(run)
        self._emit(
            "shadow_started",
            f"{bot.name}: shadow run of {slot.name} version {active.version} started",
            bot.name,
            {"model": slot.name, "version": active.version},
        )
        return run

    def decide(
        self,
        run: ShadowBot,
        candle: Candle,
        features: dict[str, float],
        probability: float,
        time_ms: int,
    ) -> None:
        self._guarded(run, lambda: run.decide(candle, features, probability, time_ms))

    def on_trade(self, trade: Trade, bots: Iterable[str]) -> None:
        for name in bots:
            for run in self.bots.get(name, ()):
                self._guarded(run, partial(run.on_trade, trade))

    def tick(self, now_ms: int) -> None:
        for runs in self.bots.values():
            for run in runs:
                self._guarded(run, partial(run.tick, now_ms))

    def _guarded(self, run: ShadowBot, action: Callable[[], None]) -> None:
        """A shadow run's failure is its own: it ends (an event), the step goes on."""
        try:
            action()
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            log.exception("shadow run of %s failed", run.runtime.name)
            runs = self.bots.get(run.runtime.name, [])
            if run in runs:
                runs.remove(run)
            self._emit(
                "shadow_failed",
                f"{run.runtime.name}: shadow run of {run.model_name} version {run.version} "
                f"ended: {reason}",
                run.runtime.name,
                {"model": run.model_name, "version": run.version, "reason": reason},
            )

    def flush(self) -> None:
        """Write what changed, and drop finished runs that are no longer current."""
        for name, runs in list(self.bots.items()):
            for run in runs:
                record = run.take_record()
                if record is not None:
                    self._submit(ShadowWrite(record))
            kept = [run for index, run in enumerate(runs) if index == len(runs) - 1 or not run.flat]
            self.bots[name] = kept

    def forget(self, bot: str) -> None:
        self.flush()
        self.bots.pop(bot, None)

    def _once(self, bot: BotRuntime, active: ActiveModel, reason: str) -> None:
        key = (bot.name, active.version, reason)
        if key in self._reported:
            return
        self._reported.add(key)
        self._emit(
            "shadow_skipped",
            f"{bot.name}: no shadow run of {active.model.name} version {active.version}: {reason}",
            bot.name,
            {"model": active.model.name, "version": active.version, "reason": reason},
        )
