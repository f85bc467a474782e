"""The live engine: every enabled bot of the database in one asyncio process.

Modules, one purpose each: `engine` (the `Engine`: wiring, lifecycle and control), `startup`,
`loops`, `health` (state, status snapshots, heartbeats) and `shutdown` (its lifecycle's steps),
`event_sink` (where an engine event goes),
`core` (steps: trades, ticks and broker reports applied to the books), `decisions` (batched
predictions and guarded strategy calls), `features` (per-symbol candles and shared feature
states), `bot` (one bot's runtime), `bot_manager` (bots following the bots table),
`model_watcher` (champions loaded, checked and swapped), `recorder` and `persistence`
(write-behind to the database), `outbox` (orders to the broker after their intent),
`recovery` (start = crash recovery), `heartbeats`, `clock` (the `Clock` seam: the market
clock that drives timeouts, and a simulated one), `compose` (the one place the
environment's parts are chosen), `run` (the process entry).
"""

from live.engine.compose import build_engine
from live.engine.config import EngineConfig
from live.engine.engine import Engine
from live.engine.events import EngineEvent, EventBus
from live.engine.run import run_engine, serve
from live.engine.status import (
    BotRunState,
    BotStatusView,
    DatabaseHealth,
    EngineState,
    EngineStatus,
    KillSwitchState,
)
from live.engine.strategy_watch import StrategyAssignError

__all__ = [
    "BotRunState",
    "BotStatusView",
    "DatabaseHealth",
    "Engine",
    "EngineConfig",
    "EngineEvent",
    "EngineState",
    "EngineStatus",
    "EventBus",
    "KillSwitchState",
    "StrategyAssignError",
    "build_engine",
    "run_engine",
    "serve",
]
