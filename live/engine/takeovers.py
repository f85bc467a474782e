"""What sharing bots through leases means for one engine (PostgreSQL; live/engine/leases.py
keeps the leases themselves): at each poll the leases are renewed and claimed, a bot lost
to another engine is dropped without a write, a bot gained (a takeover, or one held again
under a new epoch) starts from what the database says with its working orders agreed with
the venue before any entry; and a write the database refused for a stale epoch stops that
bot here at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from live.engine.bot_manager import BotManager
from live.engine.core import TradingCore
from live.engine.leases import LeaseChange, LeaseKeeper
from live.engine.persistence import BotWrite
from live.engine.recorder import Recorder, describe
from live.engine.recovery import BotsSnapshot
from live.engine.venue_check import VenueReconciler

__all__ = ["Takeovers", "bot_ids"]

log = logging.getLogger(__name__)


def bot_ids(snapshot: BotsSnapshot) -> list[int]:
    """Every bot of the table, valid or not: the ones an engine may lease."""
    return [bot.id for bot in snapshot.bots] + [bot.id for bot in snapshot.invalid]


class Takeovers:
    def __init__(
        self,
        engine_id: str,
        core: TradingCore,
        leases: LeaseKeeper,
        recorder: Recorder,
        bots: BotManager,
        venues: VenueReconciler,
        *,
        update_state: Callable[[], None],
    ) -> None:
        self.engine_id = engine_id
        self.core, self.leases, self.recorder = core, leases, recorder
        self.bots, self.venues = bots, venues
        self._update_state = update_state
        self._forgetting: set[asyncio.Task[None]] = set()

    async def renew(self, snapshot: BotsSnapshot) -> LeaseChange | None:
        """Renew and claim (None on SQLite); bots lost to another engine are dropped here."""
        if not self.leases.enabled:
            return None
        try:
            change = await self.leases.renew(self.recorder.read, bot_ids(snapshot))
        except Exception as error:
            log.warning("cannot renew the bot leases: %s", describe(error))
            self._update_state()  # entries stop once the leases are no longer fresh
            return LeaseChange({}, ())
        for bot in [b for b in self.core.bots.values() if b.row.id in change.lost]:
            await self.bots.forget(bot.name, "its lease is held by another engine")
        # held again under a new epoch: another engine ran it meanwhile, so it restarts
        # from what the database says (the recovery of a takeover), not from this memory
        for bot in [b for b in self.core.bots.values() if b.row.id in change.gained]:
            await self.bots.forget(bot.name, "its lease changed hands and came back")
        return change

    async def start_gained(self, snapshot: BotsSnapshot, change: LeaseChange) -> None:
        """The bots of a takeover start from what the database says, and their working
        orders are agreed with the venue, before any entry."""
        self.core.set_trading(False)
        try:
            await self.bots.apply(self.leases.mine(snapshot))
            names = {b.name for b in self.core.bots.values() if b.row.id in change.gained}
            report = await self.venues.reconcile(act=True, bots=names)
            self.venues.report_unknown(report)
        finally:
            self._update_state()
        self.core.emit(
            "bots_claimed",
            f"engine {self.engine_id} runs {len(names)} more bots: {sorted(names)}",
            data={
                "engine_id": self.engine_id,
                "epochs": {
                    b.name: change.gained[b.row.id]
                    for b in self.core.bots.values()
                    if b.row.id in change.gained
                },
                "resumed": list(report.resumed),
                "resent": list(report.resent),
            },
        )

    def on_write_refused(self, write: BotWrite) -> None:
        """The database refused a write: another engine took the bot over. Stop it now
        (unless the write is from an earlier tenure and the bot runs here again since)."""
        current = write.epoch is not None and self.leases.epoch(write.bot_id) == write.epoch
        bot = next((b for b in self.core.bots.values() if b.row.id == write.bot_id), None)
        if current:
            self.leases.forget(write.bot_id)
        elif self.leases.epoch(write.bot_id) is not None:
            bot = None  # running here under a newer epoch: only reported
        self.core.emit(
            "write_refused",
            f"engine {self.engine_id}: a {type(write).__name__} of bot "
            f"{bot.name if bot else write.bot_id} was refused (epoch {write.epoch} is stale)",
            bot.name if bot else None,
            {"engine_id": self.engine_id, "bot_id": write.bot_id, "epoch": write.epoch},
        )
        if bot is not None:
            self.core.remove_bot(bot.name)  # no decision, no order from here on
            task = asyncio.get_running_loop().create_task(
                self.bots.forget_detached(bot, "a write was refused: another engine owns it"),
                name=f"forget-{bot.name}",
            )
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)
