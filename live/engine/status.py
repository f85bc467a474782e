"""Lifecycles and read-only status snapshots: what /health, the CLI and tests read.

Snapshots are frozen and hold no reference into the engine, so a reader (the control API
in another task, a test) can keep and compare them while the engine moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from live.feeds import FeedStatus
from tradepipe.enums import BotStatus

__all__ = [
    "BotRunState",
    "BotStatusView",
    "DatabaseHealth",
    "EngineState",
    "EngineStatus",
    "KillSwitchState",
    "LeaseStatus",
]


class EngineState(StrEnum):
    STARTING = "starting"
    RECONCILING = "reconciling"  # loading state and agreeing with the broker; no trading
    RUNNING = "running"
    DEGRADED = "degraded"  # running, but the database or the feed is failing: no entries
    STOPPING = "stopping"
    STOPPED = "stopped"


class BotRunState(StrEnum):
    """A bot inside a running engine."""

    STARTING = "starting"
    WAITING_FOR_MODEL = "waiting_for_model"  # its model is not available (yet): no decisions
    # the version behind its model's alias cannot trade (it does not load, or fails its
    # check) and no earlier one is loaded: no decisions until a good version is promoted
    MODEL_ERROR = "model_error"
    # its model's champion breached its guard rails with no earlier champion to go back to:
    # no decisions, open positions keep their exits, until another version is promoted
    MODEL_GUARDED = "model_guarded"
    WARMING_UP = "warming_up"  # features not defined yet: no decisions
    RUNNING = "running"
    DISABLED = "disabled"  # no new entries; open positions are still managed until flat
    ERROR = "error"  # its strategy raised: no decisions; open positions are still managed
    STOPPED = "stopped"

    @property
    def database_status(self) -> BotStatus:
        """The coarser word the bots table keeps (`bots.status`)."""
        if self in (BotRunState.ERROR, BotRunState.MODEL_ERROR, BotRunState.MODEL_GUARDED):
            return BotStatus.ERROR
        if self in (BotRunState.STOPPED, BotRunState.DISABLED):
            return BotStatus.STOPPED
        return BotStatus.RUNNING


@dataclass(frozen=True, slots=True)
class BotStatusView:
    name: str
    symbol: str
    timeframe: str
    strategy: str
    strategy_hash: str | None
    state: BotRunState
    enabled: bool
    accepting_entries: bool
    open_positions: int
    pending_positions: int
    working_orders: int
    model: str | None  # "name@alias"
    model_version: str | None
    last_candle_ms: int | None
    decisions: int
    entries: int
    last_error: str | None
    # the risk limit stopping its entries now (daily_loss_limit, max_drawdown_pct,
    # venue_errors; None: none), until when (None: until an operator re-enables it), and
    # the realised net PnL of the current UTC day it counts (tradepipe/risk.py)
    risk_halt: str | None = None
    risk_halted_until_ms: int | None = None
    day_realised_pnl: float = 0.0


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    available: bool
    pending_writes: int
    last_error: str | None
    failing_since: datetime | None


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    engaged: bool
    reason: str | None = None
    engaged_at: datetime | None = None
    flatten: bool = False  # every open position left at market too, not only pending entries


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """The engine's bot leases (PostgreSQL; `enabled` False on SQLite, which has none)."""

    enabled: bool
    ttl_seconds: float
    max_bots: int
    epochs: dict[str, int]  # bot name -> epoch held
    renewed_at: datetime | None
    fresh: bool
    held_since: dict[str, datetime] = field(default_factory=dict)  # bot name -> when gained


@dataclass(frozen=True, slots=True)
class EngineStatus:
    engine_id: str
    state: EngineState
    started_at: datetime | None
    market_time_ms: int | None
    feed: FeedStatus
    database: DatabaseHealth
    kill_switch: KillSwitchState
    broker: str
    broker_open_orders: int
    bots: tuple[BotStatusView, ...]
    # why `state` is degraded: the database, the feed, or a symbol silent by name
    degraded_reasons: tuple[str, ...] = ()
    leases: LeaseStatus | None = None

    @property
    def healthy(self) -> bool:
        return self.state is EngineState.RUNNING

    def bot(self, name: str) -> BotStatusView | None:
        return next((bot for bot in self.bots if bot.name == name), None)
