"""The engine's own knobs, built from the platform Settings plus explicit overrides.

Settings does not (yet) carry every engine knob; `EngineConfig.from_settings` reads each one
from Settings when a field of the name in `SETTINGS_FIELDS` exists there and falls back to
the default here otherwise, so adding the field to Settings later needs no change here.
Tests and the `python -m live.engine` entry pass overrides directly.

The default market data is the embedded one (ARCHITECTURE.md): the replay server on this
machine (`ws://<host>:<replay_port>`, REST `http://<host>:<replay_rest_port>`). Production
points `feed_url` at `wss://stream.binance.com:9443` and `rest_url` at
`https://api.binance.com`.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from live.feeds.sanity import SanityConfig
from tradepipe.config import Settings
from tradepipe.costs import PAPER_COSTS
from tradepipe.orders import FeeSchedule
from tradepipe.retries import Backoff

__all__ = ["SETTINGS_FIELDS", "EngineConfig", "default_engine_id"]

MAX_TOTAL_EXPOSURE = 1e15  # quote currency: a bound that keeps sums finite, not advice

# EngineConfig field -> the Settings field that overrides its default, when Settings has it.
SETTINGS_FIELDS = {
    "feed_url": "feed_url",
    "rest_url": "feed_rest_url",
    "heartbeat_seconds": "engine_heartbeat_seconds",
    "lease_ttl_seconds": "engine_lease_ttl_seconds",
    "engine_max_bots": "engine_max_bots",
    "bot_reload_seconds": "engine_bot_reload_seconds",
    "model_poll_seconds": "engine_model_poll_seconds",
    "default_strategy": "default_strategy",
    "strategy_debounce_seconds": "strategy_debounce_seconds",
    "strategy_smoke_budget_seconds": "strategy_smoke_budget_seconds",
    "strategy_call_budget_seconds": "strategy_call_budget_seconds",
    "paper_slippage_bps": "paper_slippage_bps",
    "maker_fee_rate": "paper_maker_fee_rate",
    "taker_fee_rate": "paper_taker_fee_rate",
    "allow_live_trading": "allow_live_trading",
    "exchange_testnet_url": "exchange_testnet_url",
    "exchange_live_url": "exchange_live_url",
    "exchange_timeout_seconds": "ccxt_timeout_seconds",
    "exchange_poll_seconds": "exchange_poll_seconds",
    "exchange_venue_protection": "exchange_venue_protection",
    "exchange_stop_limit_pct": "exchange_stop_limit_pct",
    "reconcile_seconds": "engine_reconcile_seconds",
    "feed_silence_seconds": "feed_silence_seconds",
    "feed_max_future_seconds": "feed_max_future_seconds",
    "feed_max_backward_seconds": "feed_max_backward_seconds",
    "feed_max_time_jump_seconds": "feed_max_time_jump_seconds",
    "feed_max_id_jump": "feed_max_id_jump",
    "feed_price_band": "feed_price_band",
    "feed_max_quantity_ratio": "feed_max_quantity_ratio",
    "feed_max_message_bytes": "feed_max_message_bytes",
    "record_candles": "record_candles",
    "record_decisions": "record_decisions",
    "decision_retention_days": "decision_retention_days",
    "record_exchange": "record_exchange",
    "quality_seconds": "engine_quality_seconds",
    "quality_window_seconds": "engine_quality_window_seconds",
    "journal_dir": "engine_journal_dir",
    "max_total_exposure": "risk_max_total_exposure",
    "venue_error_limit": "risk_venue_error_limit",
    "venue_cooldown_seconds": "risk_venue_cooldown_seconds",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Every interval is in seconds of wall time unless its name says otherwise."""

    database_url: str
    strategies_dir: Path
    mlflow_tracking_uri: str = ""
    feed_url: str = "ws://127.0.0.1:8765"
    rest_url: str | None = None  # kline backfill (gap repair); None: no repair
    engine_id: str | None = None  # default: <host>-<pid>
    heartbeat_seconds: float = 5.0
    # PostgreSQL (several engines share the bots, live/engine/leases.py): a bot's lease
    # lasts `lease_ttl_seconds` unless renewed (each heartbeat); an engine that has not
    # renewed for half of it takes no new entries. An engine runs at most `engine_max_bots`.
    lease_ttl_seconds: float = 30.0
    engine_max_bots: int = 1000
    bot_reload_seconds: float = 3.0
    model_poll_seconds: float = 30.0
    tick_seconds: float = 0.25
    # A candle closes on the clock only this long after its end if no later trade came:
    # trades of a second can arrive a little after the second is over.
    candle_close_grace_seconds: float = 2.0
    candle_history: int = 300  # recent candles per timeframe, to warm new feature states
    # New timeframes ask the REST side for their earlier candles (features ready at once);
    # the exchange is asked `warmup_settle_seconds` (market time) after the first complete
    # interval began, so that it has indexed the last candle before it.
    warmup_from_exchange: bool = True
    warmup_settle_seconds: float = 2.0
    warmup_timeout_seconds: float = 30.0
    # the paper broker's costs; defaults: the kernel's PAPER_COSTS (tradepipe/costs.py)
    paper_slippage_bps: float = PAPER_COSTS.slippage_bps
    maker_fee_rate: float = PAPER_COSTS.maker_rate
    taker_fee_rate: float = PAPER_COSTS.taker_rate
    db_retry_initial_seconds: float = 0.5
    db_retry_max_seconds: float = 30.0
    db_busy_timeout_ms: int = 2_000
    db_batches_per_transaction: int = 256
    # The write journal (live/engine/journal.py): writes the database could not take,
    # replayed at the next start. None: beside a SQLite file; var/journal for PostgreSQL.
    journal_dir: Path | None = None
    # An entry whose intent is not durable by then is not sent at all (rejected locally).
    entry_intent_timeout_seconds: float = 5.0
    # Exits and cancels wait this long for their intent to be durable, then go anyway:
    # protecting a position beats recording it first while the database is down.
    exit_intent_wait_seconds: float = 1.0
    broker_retry_initial_seconds: float = 0.5
    broker_retry_max_seconds: float = 30.0
    # Risk (tradepipe/risk.py): quote currency all bots together may commit (None: no cap);
    # `venue_error_limit` failed placements or cancels of a bot in a row stop its entries
    # for `venue_cooldown_seconds` of market time (the circuit breaker).
    max_total_exposure: float | None = None
    venue_error_limit: int = 5
    venue_cooldown_seconds: float = 60.0
    registry_timeout_seconds: float = 120.0
    # A new model version is loaded and tried in a separate process first (live/model_check):
    # one that does not load and predict within this time is refused.
    model_check_timeout_seconds: float = 60.0
    # Strategy files: bots of a deleted strategy move to `default_strategy`. Saves are
    # applied once the folder was quiet for `strategy_debounce_seconds`; the folder is also
    # rescanned every `strategy_rescan_seconds` (file systems that report no changes); a
    # missing file counts as deleted after `strategy_removal_grace_seconds` (editors that
    # save by re-creating the file). A new version must finish its smoke run within
    # `strategy_smoke_budget_seconds`; a live decision over `strategy_call_budget_seconds`
    # puts its bot in error.
    default_strategy: str = "ema_rsi"
    strategy_debounce_seconds: float = 0.02
    strategy_rescan_seconds: float = 30.0
    strategy_removal_grace_seconds: float = 0.5
    strategy_smoke_budget_seconds: float = 2.0
    strategy_call_budget_seconds: float = 1.0
    # A subscribed symbol without a believable trade for this long while the feed is
    # connected degrades /health, naming the symbol (the other bots trade on).
    feed_silence_seconds: float = 60.0
    # The feed's trade checks (live/feeds/sanity.py): dropped when more than
    # `feed_max_future_seconds` ahead of the local clock, more than
    # `feed_max_backward_seconds` behind the previous trade, or over
    # `feed_max_quantity_ratio` times the recent mean quantity; held until the next trade
    # confirms them when the id moves by more than `feed_max_id_jump`, the time by more
    # than `feed_max_time_jump_seconds`, or the price by more than `feed_price_band`
    # (a fraction). Frames over `feed_max_message_bytes` are counted and skipped.
    feed_max_future_seconds: float = 10.0
    feed_max_backward_seconds: float = 1.0
    feed_max_time_jump_seconds: float = 900.0
    feed_max_id_jump: int = 1_000_000
    feed_price_band: float = 0.25
    feed_max_quantity_ratio: float = 1e5
    feed_max_message_bytes: int = 64 * 1024
    stop_timeout_seconds: float = 15.0
    # The second confirmation of live trading (Settings.allow_live_trading): without it a
    # live bot is refused at start, whatever the bots table says.
    allow_live_trading: bool = False
    # Testnet and live venues (Binance spot through ccxt, live/brokers/ccxt_broker.py).
    # The URLs replace Binance's REST base (the exchange simulator in tests and local runs).
    exchange_testnet_url: str | None = None
    exchange_live_url: str | None = None
    exchange_timeout_seconds: float = 10.0
    exchange_recv_window_ms: int = 5_000
    exchange_poll_seconds: float = 1.0
    exchange_rate_limit_ms: float = 10.0  # per unit of request weight; 0: no limiter
    # Venue protection (live/brokers/protection.py): each take-profit rests at the venue as
    # an OCO with its position's stop-loss (a stop-limit `exchange_stop_limit_pct` percent
    # beyond the stop), so a position stays protected while the engine is down.
    exchange_venue_protection: bool = True
    exchange_stop_limit_pct: float = 1.0
    # Open orders and recent fills of every venue against the books and the database, after
    # the one at start; what the database does not know is reported (never adopted).
    reconcile_seconds: float = 60.0
    reconcile_fills_lookback_seconds: float = 86_400.0
    # Evidence (live/engine/evidence.py): the candles the engine built go to the candle
    # store under `market_data_dir` as exchange `record_exchange`; its decisions to the
    # decision log under `decision_log_dir`, whose day partitions older than
    # `decision_retention_days` are deleted. Written by a thread from a bounded queue
    # (`evidence_queue_size` items; beyond it items are dropped and counted, trading never
    # waits), every `evidence_flush_seconds`. Off here; on by default from Settings.
    # The candle store rewrites a series' month file on each write (0.8 s for a month of
    # 1 s candles), so writes are minutes apart: a crash loses at most that much evidence.
    record_candles: bool = False
    record_decisions: bool = False
    market_data_dir: Path | None = None
    decision_log_dir: Path | None = None
    record_exchange: str = "binance-live"
    decision_retention_days: int = 30
    evidence_queue_size: int = 100_000
    evidence_flush_seconds: float = 300.0
    # Live model quality (live/engine/quality.py) from that evidence, recomputed every
    # `quality_seconds` (0: never) over the last `quality_window_seconds` of market time.
    quality_seconds: float = 300.0
    quality_window_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith(("_seconds", "_ms")) and not (
                isinstance(value, int | float) and math.isfinite(value) and value >= 0
            ):
                raise ValueError(f"engine setting {item.name} must be a number >= 0: {value!r}")
        for name in (
            "heartbeat_seconds",
            "bot_reload_seconds",
            "model_poll_seconds",
            "model_check_timeout_seconds",
            "strategy_rescan_seconds",
            "strategy_smoke_budget_seconds",
            "strategy_call_budget_seconds",
            "reconcile_seconds",
            "exchange_timeout_seconds",
            "exchange_poll_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"engine setting {name} must be > 0")
        if self.tick_seconds <= 0:
            raise ValueError("engine setting tick_seconds must be > 0")
        for retry in ("db_retry", "broker_retry"):
            try:
                getattr(self, retry)
            except ValueError as error:  # name the engine settings, not Backoff's fields
                raise ValueError(f"engine setting {retry}_*: {error}") from None
        if self.lease_ttl_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError(
                "engine setting lease_ttl_seconds must be more than twice heartbeat_seconds "
                f"(a lease is renewed each heartbeat): {self.lease_ttl_seconds!r}"
            )
        if self.engine_max_bots < 1:
            raise ValueError(
                f"engine setting engine_max_bots must be >= 1: {self.engine_max_bots!r}"
            )
        self._check_risk()
        if self.candle_history < 1 or self.db_batches_per_transaction < 1:
            raise ValueError("candle_history and db_batches_per_transaction must be >= 1")
        if self.decision_retention_days < 1 or self.evidence_queue_size < 1:
            raise ValueError("decision_retention_days and evidence_queue_size must be >= 1")
        if self.record_candles and self.market_data_dir is None:
            raise ValueError("engine setting record_candles needs market_data_dir")
        if self.record_decisions and self.decision_log_dir is None:
            raise ValueError("engine setting record_decisions needs decision_log_dir")
        self.fees  # noqa: B018 - validates the rates now, naming the bad one
        self.feed_sanity  # noqa: B018 - the feed's tolerances, checked now
        if self.feed_silence_seconds <= 0 or self.feed_max_message_bytes < 1:
            raise ValueError(
                "engine settings feed_silence_seconds and feed_max_message_bytes must be > 0"
            )

    def _check_risk(self) -> None:
        cap = self.max_total_exposure
        if cap is not None and not (math.isfinite(cap) and 0 < cap <= MAX_TOTAL_EXPOSURE):
            raise ValueError(
                f"engine setting max_total_exposure must be > 0 and <= {MAX_TOTAL_EXPOSURE:g} "
                f"(quote currency) or unset: {cap!r}"
            )
        if not 1 <= self.venue_error_limit <= 1_000:
            raise ValueError(
                f"engine setting venue_error_limit must be 1-1000: {self.venue_error_limit!r}"
            )
        if not (math.isfinite(self.venue_cooldown_seconds) and
                0 < self.venue_cooldown_seconds <= 86_400):  # fmt: skip
            raise ValueError(
                "engine setting venue_cooldown_seconds must be > 0 and <= 86400: "
                f"{self.venue_cooldown_seconds!r}"
            )

    @property
    def db_retry(self) -> Backoff:
        """Waits between database writes while it is away: doubling, capped, no jitter
        (one engine, one database: nobody to fall out of step with)."""
        return Backoff(self.db_retry_initial_seconds, self.db_retry_max_seconds, jitter=0.0)

    @property
    def broker_retry(self) -> Backoff:
        """Waits between tries of an unavailable venue: doubling, capped, jittered (every
        engine loses the venue at once and must not return so)."""
        return Backoff(self.broker_retry_initial_seconds, self.broker_retry_max_seconds)

    def db_retry_delay(self, attempt: int) -> float:
        """Seconds before database retry `attempt` (1, 2, ...)."""
        return self.db_retry.delay(attempt)

    @property
    def fees(self) -> FeeSchedule:
        return FeeSchedule(maker_rate=self.maker_fee_rate, taker_rate=self.taker_fee_rate)

    @property
    def feed_sanity(self) -> SanityConfig:
        try:
            return SanityConfig(
                max_future_seconds=self.feed_max_future_seconds,
                max_backward_seconds=self.feed_max_backward_seconds,
                max_time_jump_seconds=self.feed_max_time_jump_seconds,
                max_id_jump=self.feed_max_id_jump,
                price_band=self.feed_price_band,
                max_quantity_ratio=self.feed_max_quantity_ratio,
            )
        except ValueError as error:  # name the engine setting, not the feed's field
            raise ValueError(f"engine setting feed_*: {error}") from None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EngineConfig:
        """The config for `settings`; `overrides` (EngineConfig field names) win."""
        values: dict[str, Any] = {
            "database_url": settings.resolved_database_url,
            "strategies_dir": settings.strategies_dir.resolve(),
            "mlflow_tracking_uri": settings.resolved_mlflow_tracking_uri,
            "feed_url": f"ws://{settings.host}:{settings.replay_port}",
            "rest_url": settings.resolved_feed_rest_url,
            "market_data_dir": settings.resolved_market_data_dir,
            "decision_log_dir": settings.resolved_decision_log_dir,
        }
        for name, setting in SETTINGS_FIELDS.items():
            value = getattr(settings, setting, None)
            if value not in (None, ""):
                values[name] = value
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown engine settings {unknown}: known are {sorted(known)}")
        values.update(overrides)
        return cls(**values)

    def with_changes(self, **changes: Any) -> EngineConfig:
        return replace(self, **changes)


def default_engine_id() -> str:
    """<host>-<pid>-<random>: unique per process start, readable in heartbeats."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
