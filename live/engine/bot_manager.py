"""Bots coming, changing and going, as the bots table says, without restarting the engine.

`BotManager.apply(snapshot)` runs at start (through reconciliation) and on every poll of the
bots table, and moves the running bots towards what the table says:
- an enabled bot that is not running starts (its saved book and strategy state restored);
- a disabled bot takes no new entries; its open positions are managed until it is flat,
  then it stops; a bot deleted from the table is treated the same way;
- a changed config applies to new entries at once (open positions keep their barriers);
  a new timeframe, model or strategy re-attaches the bot (its book is untouched); a new
  symbol waits until the bot is flat (its positions are on the old one);
- a strategy file edited to a version that validates is reloaded at once
  (`apply_strategy_changes`, state handed over through on_save/on_load); one that does not
  leaves the previous version running; a deleted one moves its bots to the default
  strategy with their positions (and back only when the operator assigns it again);
- a bot in the error state is retried when its row or its strategy file changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import fields, replace

from live.engine.bot import BotRow, BotRuntime, StrategyFailure, inert_strategy
from live.engine.core import TradingCore
from live.engine.heartbeats import bot_status_view
from live.engine.listing import SymbolListing
from live.engine.model_watcher import ActiveModel, ModelSlot, ModelWatcher
from live.engine.persistence import BotBatch, BotStatusWrite, BotStrategyWrite
from live.engine.recovery import BotsSnapshot, SavedState, restore_book
from live.engine.risk_gate import rearm, restore_risk
from live.engine.status import BotRunState
from live.engine.strategies import StrategyChange, StrategyChangeKind, StrategyLibrary
from live.feeds import Feed, FeedConsumer, Subscription
from tradepipe.bots import BotError, check_mode_opt_in
from tradepipe.enums import BotStatus
from tradepipe.features import FeatureSpec, default_spec
from tradepipe.orders import PositionBook, StateError
from tradepipe.registry import CHALLENGER, CHAMPION
from tradepipe.secrets import redact
from tradepipe.strategy import StrategyLoadError

__all__ = ["BotManager", "FeedSubscriptions"]

log = logging.getLogger(__name__)


class FeedSubscriptions:
    """One feed subscription per traded symbol, dropped when no bot trades it any more."""

    def __init__(self, feed: Feed, consumer: FeedConsumer) -> None:
        self.feed = feed
        self.consumer = consumer
        self._subscriptions: dict[str, Subscription] = {}

    async def ensure(self, symbol: str) -> None:
        if symbol not in self._subscriptions:
            self._subscriptions[symbol] = await self.feed.subscribe([symbol], self.consumer)

    async def release(self, symbol: str) -> None:
        subscription = self._subscriptions.pop(symbol, None)
        if subscription is not None:
            await self.feed.unsubscribe(subscription)


class BotManager:
    def __init__(
        self,
        core: TradingCore,
        library: StrategyLibrary,
        watcher: ModelWatcher,
        subscriptions: FeedSubscriptions,
        read_saved: Callable[[list[int]], Awaitable[dict[int, SavedState]]],
        listing: SymbolListing | None = None,
    ) -> None:
        self.core = core
        self.listing = listing or SymbolListing(None)
        self.library = library
        self.watcher = watcher
        self.subscriptions = subscriptions
        self._read_saved = read_saved
        self._reported: dict[str, str] = {}  # bot -> last problem reported (report once)
        self._loading: set[asyncio.Task[None]] = set()

    # -- the table --------------------------------------------------------------------------

    async def apply(self, snapshot: BotsSnapshot, *, first: bool = False) -> None:
        """Bring the running bots in line with `snapshot`; `first` at start, when every bot
        not started is also marked stopped in the table (it may say running from a crash)."""
        core = self.core
        rows = {row.name: row for row in snapshot.bots}
        unusable = {bot.name for bot in snapshot.invalid}  # kept running (in error) if running
        starting = [row for row in snapshot.bots if row.name not in core.bots]
        saved = await self._read_saved([row.id for row in starting]) if starting else {}
        for row in starting:
            state = saved.get(row.id)
            # a disabled bot still owns its open positions: manage them until flat
            if row.enabled or (state is not None and state.has_open_positions):
                await self.start(row, state)
            elif first:
                core.recorder.submit(BotStatusWrite(row.id, BotStatus.STOPPED, None))
        new = {row.name for row in starting}
        for row in snapshot.bots:
            bot = core.bots.get(row.name)
            if bot is not None and row.name not in new:
                await self._update(bot, row)
        for name in list(core.bots):
            bot = core.bots[name]
            gone = name not in rows and name not in unusable
            if (gone or not bot.row.enabled) and bot.flat:
                await self.stop(name, "deleted from the bots table" if gone else "disabled")
        for invalid in snapshot.invalid:
            self._report_once(invalid.name, "bot_error", invalid.message, invalid.id)
        self.watcher.release_unused(
            {
                (s.name, s.alias)
                for b in core.bots.values()
                for s in (b.slot, b.shadow_slot)
                if s is not None
            }
        )

    async def start(self, row: BotRow, saved: SavedState | None) -> None:
        core = self.core
        try:  # the table may have been edited around `tradepipe bots add`: check again
            check_mode_opt_in(
                row.mode,
                row.config,
                confirmed_mode=row.mode,
                allow_live_trading=core.config.allow_live_trading,
            )
        except BotError as error:
            self._report_once(row.name, "bot_error", f"bot {row.name} refused: {error}", row.id)
            return
        unlisted = await self.listing.problem(row.symbol)
        if unlisted is not None:  # its stream would stay silent: warming up forever
            self._report_once(row.name, "bot_error", f"bot {row.name} refused: {unlisted}", row.id)
            return
        try:
            loaded = self.library.current(row.strategy)
        except StrategyLoadError as error:
            if saved is None or not saved.has_open_positions:
                message = f"strategy does not load: {error}"
                self._report_once(row.name, "bot_error", message, row.id)
                return
            loaded = None  # manage the saved positions with an inert strategy, in error
            failure: str | None = f"strategy does not load: {error}"
        else:
            failure = None
        try:
            book = restore_book(row, saved, core.config.fees)
        except StateError as error:
            self._report_once(row.name, "bot_error", f"saved state unreadable: {error}", row.id)
            return
        try:
            bot = BotRuntime(row, loaded or inert_strategy(row.strategy), book)
        except StrategyFailure as error:
            bot = BotRuntime(row, inert_strategy(row.strategy), book)
            loaded, failure = None, str(error)
        bot.guard, bot.call_budget_seconds = core.guard, core.config.strategy_call_budget_seconds
        restore_risk(core, bot, saved.book if saved is not None else None)
        core.add_bot(bot)
        # the table hears of a start at once (set_state writes only changes of status, and a
        # starting, warming or running bot is `running` in the table alike)
        core.recorder.submit(BotStatusWrite(row.id, bot.state.database_status, None))
        self._reported.pop(row.name, None)
        if saved is not None and loaded is not None and saved.strategy_name == loaded.name:
            try:
                bot.load_state(saved.strategy_state)
            except StrategyFailure as error:
                failure = str(error)
        await self._attach(bot)
        if failure is not None:
            core.fail_bot(bot, failure)
        else:
            core.refresh_state(bot)
        positions = [p.seq for p in book.positions]
        core.emit(
            "bot_started",
            f"bot {row.name} started",
            row.name,
            {"strategy_hash": bot.strategy_hash, "open_positions": positions},
        )

    async def stop(self, name: str, reason: str) -> None:
        core = self.core
        bot = core.remove_bot(name)
        if bot is None:
            return
        core.shadows.forget(name)
        await self._detach(bot)
        core.recorder.submit(
            BotBatch(
                bot.row.id,
                bot.name,
                book=bot.saved_book(),
                strategy_state=core.strategy_state(bot),
                strategy_name=bot.loaded.name,
                strategy_hash=bot.strategy_hash,
            )
        )
        core.set_state(bot, BotRunState.STOPPED, bot.last_error)
        core.stopped_bots.append(bot_status_view(core, bot))  # its last heartbeat
        core.emit("bot_stopped", f"bot {name} stopped: {reason}", name)

    async def forget(self, name: str, reason: str) -> None:
        """Drop a bot another engine owns now (its lease was taken over): nothing is written
        for it, nothing is cancelled at the venue; the new owner recovers it from the
        database and the venue."""
        bot = self.core.remove_bot(name)
        if bot is not None:
            await self.forget_detached(bot, reason)

    async def forget_detached(self, bot: BotRuntime, reason: str) -> None:
        """The rest of `forget` for a bot already out of `core.bots`."""
        dropped = self.core.outbox.drop(bot.name)
        self.core.shadows.forget(bot.name)
        await self._detach(bot)
        bot.state = BotRunState.STOPPED
        self.core.emit(
            "bot_lease_lost",
            f"bot {bot.name} stopped here: {reason}",
            bot.name,
            {"commands_dropped": dropped},
        )

    # -- changes ----------------------------------------------------------------------------

    async def _update(self, bot: BotRuntime, row: BotRow) -> None:
        old = bot.row
        if bot.fell_back_from is not None and row.strategy == bot.fell_back_from:
            # the table has not caught up with the fallback yet (write pending): the
            # deleted strategy comes back only when the operator assigns it
            row = replace(row, strategy=old.strategy)
        elif row.strategy != old.strategy:
            bot.fell_back_from = None
        loaded = bot.loaded
        try:  # the library's version as of the last scan of the folder
            loaded = self.library.current(row.strategy)
        except StrategyLoadError as error:
            self._report_once(bot.name, "strategy_reload_failed", str(error))
        changed = [f.name for f in fields(BotRow) if getattr(old, f.name) != getattr(row, f.name)]
        new_strategy = loaded is not bot.loaded
        new_parameters = old.config.strategy_parameters != row.config.strategy_parameters
        if not changed and not new_strategy:
            await self._maybe_move(bot)
            return
        bot.row = row
        bot.book.max_open_positions = row.config.max_open_positions
        if row.enabled and not old.enabled:
            rearm(self.core, bot)
        if new_strategy or new_parameters:
            try:
                bot.replace_strategy(loaded)
            except StrategyFailure as error:
                self._report_once(bot.name, "strategy_reload_failed", str(error))
                new_strategy = False
        if bot.state is BotRunState.ERROR:
            bot.state = BotRunState.STARTING  # a change is the operator's retry
        if {"timeframe", "strategy", "config"} & set(changed) or new_strategy:
            await self._attach(bot)
        await self._maybe_move(bot)
        self.core.refresh_state(bot)
        details = {"changed": changed, "strategy_hash": bot.strategy_hash}
        if new_strategy and not changed:
            self.core.emit(
                "bot_reloaded",
                f"bot {bot.name} runs {bot.loaded.name} {bot.strategy_hash[:12]} now",
                bot.name,
                {**details, "strategy": bot.loaded.name, "open_positions": _open(bot)},
            )
            return
        self.core.emit(
            "bot_updated",
            f"bot {bot.name} updated: {changed or 'strategy file'}",
            bot.name,
            details,
        )

    # -- strategy files --------------------------------------------------------------------

    async def apply_strategy_changes(self, changes: list[StrategyChange]) -> None:
        """Reload the bots of edited strategies, move those of deleted ones to the default."""
        for change in changes:
            users = [b for b in self.core.bots.values() if b.row.strategy == change.name]
            for bot in users:
                if change.kind is StrategyChangeKind.REMOVED:
                    await self._fall_back(bot)
                elif change.kind is not StrategyChangeKind.INVALID:
                    await self._update(bot, bot.row)

    async def _fall_back(self, bot: BotRuntime) -> None:
        core = self.core
        deleted = bot.row.strategy
        default = core.config.default_strategy
        try:
            loaded = self.library.current(default)
        except StrategyLoadError as error:
            message = (
                f"strategy {deleted} was deleted and the default strategy {default} cannot "
                f"run ({error}): the bot keeps the deleted version until one is assigned"
            )
            self._report_once(bot.name, "strategy_fallback_failed", message)
            return
        bot.row = replace(bot.row, strategy=default)
        bot.fell_back_from = deleted
        try:
            bot.replace_strategy(loaded)
        except StrategyFailure as error:
            core.fail_bot(bot, str(error))
        core.recorder.submit(BotStrategyWrite(bot.row.id, default))
        if bot.state is BotRunState.ERROR and bot.loaded is loaded:
            bot.state = BotRunState.STARTING
        await self._attach(bot)
        core.refresh_state(bot)
        positions = _open(bot)
        core.emit(
            "bot_fell_back",
            f"bot {bot.name}: strategy {deleted} was deleted; it runs {default} now "
            f"({len(positions)} open positions kept)",
            bot.name,
            {
                "from": deleted,
                "to": default,
                "strategy_hash": bot.strategy_hash,
                "open_positions": positions,
            },
        )

    async def _maybe_move(self, bot: BotRuntime) -> None:
        """Apply a new symbol once the bot holds nothing on the old one."""
        if bot.row.symbol == bot.symbol:
            return
        if not bot.flat:
            self._report_once(
                bot.name,
                "bot_symbol_change_deferred",
                f"symbol {bot.row.symbol} applies once the positions on {bot.symbol} are closed",
            )
            return
        unlisted = await self.listing.problem(bot.row.symbol)
        if unlisted is not None:  # stays flat on its old symbol, in error, until fixed
            message = f"bot {bot.name} cannot move to {bot.row.symbol}: {unlisted}"
            self._report_once(bot.name, "bot_error", message, bot.row.id)
            return
        await self._detach(bot)
        book = bot.book
        bot.book = PositionBook(
            book.bot,
            bot.row.symbol,
            max_open_positions=book.max_open_positions,
            fees=book.fees,
            simulated=False,
            next_seq=book.next_seq,
        )
        await self._attach(bot)

    # -- pipelines and models ------------------------------------------------------------

    async def _attach(self, bot: BotRuntime) -> None:
        core = self.core
        core.join_pipeline(bot)
        await self.subscriptions.ensure(bot.symbol)
        ref = bot.row.model_ref(bot.loaded)
        bot.slot = self.watcher.slot(*ref) if ref is not None else None
        if bot.slot is not None and bot.slot.active is not None:
            self._join(bot, bot.slot.active.spec)
        else:
            # without a model yet: the default spec keeps the timeframe's candles coming, so
            # the model's own features are warm from them the moment it arrives
            self._join(bot, default_spec())
            if bot.slot is not None:
                self._load_soon(bot.slot)
        bot.shadow_slot = None
        if ref is not None and ref[1] == CHAMPION:  # its challenger runs in shadow beside it
            bot.shadow_slot = self.watcher.slot(ref[0], CHALLENGER, shadow=True)
            if bot.shadow_slot.active is None:
                self._load_soon(bot.shadow_slot)

    def _join(self, bot: BotRuntime, spec: FeatureSpec) -> None:
        pipeline = self.core.symbols[bot.symbol]
        bot.features = pipeline.join(bot.name, bot.row.timeframe, spec)
        missing = [n for n in bot.loaded.cls.required_features if n not in spec.feature_names]
        if missing:
            self.core.fail_bot(
                bot,
                f"{bot.loaded.path}: needs features {missing} that the "
                f"feature spec {spec.name!r} does not compute",
            )

    async def _detach(self, bot: BotRuntime) -> None:
        if self.core.leave_pipeline(bot):
            await self.subscriptions.release(bot.symbol)

    def _load_soon(self, slot: ModelSlot) -> None:
        task = asyncio.get_running_loop().create_task(self.watcher.poll_slot(slot))
        self._loading.add(task)
        task.add_done_callback(self._loading.discard)

    def on_swap(self, slot: ModelSlot, previous: ActiveModel | None) -> None:
        """A checked version is active: re-key its bots' features if its spec differs."""
        active = slot.active
        assert active is not None
        users = [b for b in self.core.bots.values() if b.slot is slot]
        for bot in users:
            if bot.features is None or bot.features.spec.content_hash != active.spec.content_hash:
                self._join(bot, active.spec)
            self.core.refresh_state(bot)
        kind = "model_loaded" if previous is None else "model_swapped"
        before = previous.version if previous else None
        self.core.emit(
            kind,
            f"{slot.ref}: version {active.version} active (was {before})",
            data={
                "model": slot.ref,
                "version": active.version,
                "previous": before,
                "bots": [b.name for b in users],
            },
        )

    def on_refused(self, slot: ModelSlot, version: str, reason: str) -> None:
        """A version that may not trade: with no earlier one active, its bots wait in error
        (the reason in the bots table) until a good version is promoted."""
        users = [b.name for b in self.core.bots.values() if b.slot is slot]
        running = slot.active.version if slot.active else None
        self.core.emit(
            "model_refused",
            f"{slot.ref} version {version} refused: {reason}",
            data={
                "model": slot.ref,
                "version": version,
                "reason": reason,
                "running_version": running,
                "bots": users,
            },
        )
        for name in users:
            self.core.refresh_state(self.core.bots[name])

    async def close(self) -> None:
        for task in list(self._loading):
            task.cancel()
        for task in list(self._loading):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                log.debug("model load cancelled at stop")

    def _report_once(self, bot: str, kind: str, message: str, bot_id: int | None = None) -> None:
        """Report a problem that persists across polls once, not every few seconds."""
        message = redact(message)  # it goes to the bots table as well as to the event
        if self._reported.get(bot) == message:
            return
        self._reported[bot] = message
        running = self.core.bots.get(bot)
        if kind == "bot_error" and running is not None:
            self.core.fail_bot(running, message)
            return
        if kind == "bot_error" and bot_id is not None:
            self.core.recorder.submit(BotStatusWrite(bot_id, BotStatus.ERROR, message))
        self.core.emit(kind, message, bot)


def _open(bot: BotRuntime) -> list[int]:
    return [position.seq for position in bot.book.positions]
