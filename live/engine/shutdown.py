"""The two halves of the engine's graceful stop that must keep their order: trading brought
to rest (no market data, no bot task, no warm-up, no order still on its way to the broker,
every book written), then the recorder flushed before the leases are given up, so another
engine takes a bot over only once every write of this one is in."""

from __future__ import annotations

import asyncio
import contextlib

from live.engine.bot_manager import BotManager
from live.engine.core import TradingCore
from live.engine.leases import LeaseKeeper
from live.engine.recorder import Recorder
from live.engine.status import BotRunState
from live.feeds import Feed

__all__ = ["bring_trading_to_rest", "flush_and_release"]


async def bring_trading_to_rest(
    core: TradingCore, feed: Feed, bots: BotManager, recorder: Recorder, *, deadline: float
) -> None:
    """Feed stopped, bots' tasks closed, orders on their way sent or given up, and each
    bot's book submitted with the bot marked stopped (a failed bot keeps its error)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(feed.stop(), deadline / 3)
    await bots.close()
    if core.warmup is not None:
        core.warmup.cancel()
    await core.outbox.idle(min(2.0, deadline / 3))
    await core.outbox.close()
    for bot in list(core.bots.values()):
        recorder.submit(core.batch(bot, []))
        if bot.state is not BotRunState.ERROR:
            core.set_state(bot, BotRunState.STOPPED)


async def flush_and_release(
    recorder: Recorder,
    recorder_task: asyncio.Task[None] | None,
    leases: LeaseKeeper,
    *,
    deadline: float,
) -> None:
    """Every queued write in within `deadline`, then the leases released; a recorder that
    could not flush is cancelled and its bots' leases left to expire."""
    flushed = await recorder.close(deadline)
    if flushed:  # every write is in: the others may take the bots over at once
        with contextlib.suppress(Exception):
            await leases.release(recorder.read)
    if recorder_task is not None:
        if not flushed:
            recorder_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(recorder_task, 1.0)
