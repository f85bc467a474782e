"""Strategy files edited while bots trade: watched, debounced, validated, applied.

`FolderWatcher` turns watchdog's file events in the strategies folder (created, modified,
closed after writing, moved in or out, deleted) into one debounced call in the engine's
loop: saves of a file that come in quick succession, and the several events of one save,
give one look at the folder. Editors that write a temporary file and rename it over the
strategy produce a move whose destination is the strategy: that counts as its change.

`StrategyReloads` is what the look does: scan the folder (content-hashed: a save that does
not change the bytes changes nothing), announce each change as an event, apply it to the
bots (reload, keep the previous version, fall back to the default strategy), then record
it in the registry table. The folder is also scanned every `strategy_rescan_seconds` in
case the file system cannot report changes (network mounts), and once more after a file
went missing, to tell a deletion from a save that re-creates the file.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from live.engine.persistence import StrategySourceWrite
from live.engine.strategies import (
    StrategyChange,
    StrategyChangeKind,
    StrategyInfo,
    StrategyLibrary,
)
from tradepipe.botconfig import BotConfig
from tradepipe.strategy import StrategyLoadError
from tradepipe.strategy.registry_sync import StrategySyncError, sync_strategies

if TYPE_CHECKING:
    from live.engine.bot_manager import BotManager
    from live.engine.core import TradingCore

__all__ = ["FolderWatcher", "StrategyAssignError", "StrategyReloads"]

log = logging.getLogger(__name__)


class StrategyAssignError(ValueError):
    """A strategy that may not be assigned to a bot (unknown, invalid, deleted, or its
    parameters do not validate against the bot's config); the message says which."""


class FolderWatcher:
    """Calls `on_change` in `loop` once the strategy files of `directory` have been quiet
    for `debounce_seconds` (at most `max_delay_seconds` after the first event)."""

    def __init__(
        self,
        directory: Path,
        on_change: Callable[[], None],
        *,
        debounce_seconds: float,
        max_delay_seconds: float = 1.0,
    ) -> None:
        self.directory = directory
        self.on_change = on_change
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max(max_delay_seconds, debounce_seconds)
        self.events = 0  # file events seen (metrics, tests)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._timer: asyncio.TimerHandle | None = None
        self._first_event: float | None = None

    def start(self) -> None:
        """Watch from now on (the folder must exist). Call from the engine's loop."""
        self._loop = asyncio.get_running_loop()
        handler = _Handler(self)
        observer = Observer()
        observer.schedule(handler, str(self.directory), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5.0)

    def notice(self) -> None:
        """A strategy file changed (called in the loop): (re)start the quiet period."""
        assert self._loop is not None
        self.events += 1
        now = self._loop.time()
        if self._first_event is None:
            self._first_event = now
        latest = self._first_event + self.max_delay_seconds
        delay = max(0.0, min(self.debounce_seconds, latest - now))
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._first_event = None
        self.on_change()

    def from_thread(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.notice)


class _Handler(FileSystemEventHandler):
    """Runs in watchdog's thread: only hands the news to the loop."""

    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or isinstance(event, FileOpenedEvent | FileClosedNoWriteEvent):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(_is_strategy_file(path) for path in paths):
            self.watcher.from_thread()


def _is_strategy_file(path: str | bytes) -> bool:
    name = Path(path.decode() if isinstance(path, bytes) else path).name
    return name.endswith(".py") and not name.startswith(("_", "."))


class StrategyReloads:
    """The engine's strategy folder, kept applied to its bots and recorded in the registry."""

    def __init__(
        self,
        core: TradingCore,
        library: StrategyLibrary,
        bots: BotManager,
        *,
        debounce_seconds: float,
        rescan_seconds: float,
        poll_bots: Callable[[], Awaitable[None]],
    ) -> None:
        self.core = core
        self.library = library
        self.bots = bots
        self.rescan_seconds = rescan_seconds
        self._poll_bots = poll_bots
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._registry_stale = True
        self._follow_up: asyncio.TimerHandle | None = None
        # The registry write of the watcher's scans runs after them, not inside: an edit's
        # bots run it as soon as it is applied, and the next edit is not held up by the
        # write before (tens of ms on a busy database). One write at a time.
        self._record_lock = asyncio.Lock()
        self._recording: asyncio.Task[None] | None = None
        self._record_again = False
        self.scans = 0
        self.watcher = FolderWatcher(
            library.directory, self.wanted, debounce_seconds=debounce_seconds
        )

    @property
    def registry_stale(self) -> bool:
        """The last registry write failed (or none happened yet): the next scan retries."""
        return self._registry_stale

    def wanted(self) -> None:
        """Ask for a scan soon (from the loop)."""
        self._wanted.set()

    def warm_validator(self) -> None:
        """Start the shared strategy validation process (blocking: call from a thread)."""
        from tradepipe.strategy.preflight import shared_validator

        shared_validator().warm()

    async def first_scan(self) -> None:
        """At start, before any bot: load what the folder holds (no bot to reload yet)."""
        await self.scan()

    async def run(self) -> None:
        """Watch and apply until cancelled."""
        try:
            self.watcher.start()
        except OSError as error:  # e.g. inotify watches exhausted: rescans still work
            log.error("cannot watch %s (%s): rescanning only", self.library.directory, error)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.rescan_seconds):
                        await self._wanted.wait()
                self._wanted.clear()
                try:
                    await self.scan(record_after=True)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("strategy scan failed; the next change or rescan retries")
        finally:
            self.watcher.stop()
            if self._follow_up is not None:
                self._follow_up.cancel()
            if self._recording is not None:
                # an unwritten change stays stale: the next start's first scan records it
                self._recording.cancel()

    async def scan(self, *, record_after: bool = False) -> list[StrategyChange]:
        """Look at the folder and apply what changed; the registry table is written before
        this returns, or, with `record_after` (the watcher's scans), right after it."""
        async with self._lock:
            configs = self._configs_by_strategy()
            try:
                changes = await asyncio.to_thread(
                    self.library.scan, lambda name: configs.get(name, {})
                )
            except StrategySyncError as error:
                log.error("%s: strategies are kept as they are", error)
                return []
            self.scans += 1
            self.library.publish()
            for change in changes:
                self._announce(change)
                self._keep_source(change)
            await self.bots.apply_strategy_changes(changes)
            record = bool(changes) or self._registry_stale
            if record and not record_after:
                await self._record()
            self._schedule_follow_up()
        if record and record_after:
            self._record_soon()
        if any(c.kind is StrategyChangeKind.ADDED for c in changes):
            await self._poll_bots()  # bots waiting for this strategy can start now
        return changes

    def _configs_by_strategy(self) -> dict[str, dict[str, BotConfig]]:
        found: dict[str, dict[str, BotConfig]] = {}
        for bot in self.core.bots.values():
            found.setdefault(bot.row.strategy, {})[bot.name] = bot.row.config
        return found

    def _announce(self, change: StrategyChange) -> None:
        users = sorted(b.name for b in self.core.bots.values() if b.row.strategy == change.name)
        data: dict[str, object] = {
            "strategy": change.name,
            "content_hash": change.content_hash,
            "bots": users,
        }
        if change.kind is StrategyChangeKind.INVALID:
            assert change.error is not None
            data |= {"error": str(change.error), "line": change.error.line}
            message = f"strategy {change.name} is invalid: {change.error}"
            if users:
                message += " (its bots keep the previous version)"
        elif change.kind is StrategyChangeKind.REMOVED:
            message = f"strategy {change.name} was deleted"
        else:
            message = f"strategy {change.name} {change.kind.value}: {change.content_hash[:12]}"
        self.core.emit(f"strategy_{change.kind.value}", message, data=data)

    def _keep_source(self, change: StrategyChange) -> None:
        """Every version bots may run is kept by hash (queued before any decision or order
        naming it, so the recorder writes it first)."""
        loaded = change.loaded
        if loaded is not None and loaded.source:
            write = StrategySourceWrite(loaded.name, loaded.content_hash, loaded.source)
            self.core.recorder.submit(write)

    def _record_soon(self) -> None:
        if self._recording is not None and not self._recording.done():
            self._record_again = True  # the write in flight may have read the folder before
            return
        self._recording = asyncio.create_task(self._record_until_current())

    async def _record_until_current(self) -> None:
        self._record_again = True
        while self._record_again:
            self._record_again = False
            await self._record()

    async def _record(self) -> None:
        """The registry table, in line with the folder (the one registry sync)."""
        async with self._record_lock:
            await self._sync_registry()

    async def _sync_registry(self) -> None:
        library = self.library
        try:
            report = await self.core.recorder.read(
                lambda session: sync_strategies(
                    session, library.directory, load=library.load_for_registry
                )
            )
        except Exception as error:
            self._registry_stale = True
            log.warning("strategy registry not updated (%s); retried at the next scan", error)
            return
        self._registry_stale = False
        library.recorded(report)

    async def assign(self, bot: str, strategy: str) -> None:
        """Point bot `bot` at `strategy` in the bots table and apply it now (BotError: no
        such bot; StrategyAssignError: the strategy may not run it)."""
        from tradepipe.bots import BotError, set_strategy
        from tradepipe.db.queries import get_bot

        recorder = self.core.recorder
        view = await recorder.read(lambda session: get_bot(session, bot))
        if view is None:
            raise BotError(f"no bot called {bot!r} (see `tradepipe bots list`)")
        try:
            loaded = self.library.current(strategy)
            if view.config is not None:
                loaded.create(view.config.strategy_parameters)
        except StrategyLoadError as error:
            raise StrategyAssignError(
                f"strategy {strategy!r} cannot be assigned: {error}"
            ) from None
        except Exception as error:  # the parameters do not validate, or __init__ raised
            raise StrategyAssignError(
                f"strategy {strategy!r} cannot run bot {bot!r}: {error}"
            ) from None
        await recorder.read(lambda session: set_strategy(session, bot, strategy))
        running = self.core.bots.get(bot)
        if running is not None:
            running.fell_back_from = None  # the operator decided
        await self._poll_bots()

    # -- what the API shows ------------------------------------------------------------------

    def get(self, name: str) -> StrategyInfo | None:
        return self.library.info_of(name, bots_by_strategy(self.core).get(name, ()))

    def list(self) -> builtins.list[StrategyInfo]:
        """Every strategy file the engine has seen (removed ones included), by name."""
        return self.library.info(bots_by_strategy(self.core))

    def _schedule_follow_up(self) -> None:
        """A file is missing but not yet declared removed: look again when it may be."""
        wait = self.library.pending_removal()
        if wait is None or self._follow_up is not None:
            return

        def again() -> None:
            self._follow_up = None
            self.wanted()

        self._follow_up = asyncio.get_running_loop().call_later(wait + 0.01, again)


def bots_by_strategy(core: TradingCore) -> Mapping[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for bot in core.bots.values():
        found.setdefault(bot.row.strategy, []).append(bot.name)
    return {name: tuple(sorted(bots)) for name, bots in found.items()}
