"""Status snapshots of the running bots, the heartbeat rows made from them, and metrics.

The heartbeats table keeps the latest beat of the engine and of each bot (an upsert every
`heartbeat_seconds`, wall time); readers judge staleness from `beat_at`. The beat's `status`
is the lifecycle word (running, degraded, warming_up, waiting_for_model, error...) and its
`detail` what an operator needs next to it: open positions, working orders, the model
version, the database backlog, the broker's open orders beside the books' working ones
(equal when the engine and the venue agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from live.engine.bot import BotRuntime
from live.engine.core import TradingCore
from live.engine.evidence import EvidenceMetrics
from live.engine.persistence import HeartbeatWrite
from live.engine.recorder import Recorder
from live.engine.risk_gate import risk_status
from live.engine.status import BotStatusView, EngineStatus
from live.feeds import FeedMetrics
from tradepipe import __version__
from tradepipe.enums import ComponentKind

__all__ = [
    "bot_status_view",
    "engine_metrics",
    "heartbeat_rows",
    "last_trades",
    "published_prices",
]


def last_trades(core: TradingCore) -> dict[str, tuple[str, float, int]]:
    """symbol -> (exchange, price, market time ms) of the last trade of each symbol the
    engine's bots trade."""
    exchanges = {bot.symbol: bot.row.exchange for bot in core.bots.values()}
    return {
        symbol: (exchanges[symbol], price, time_ms)
        for symbol, (price, time_ms) in core.last_trades.items()
        if symbol in exchanges
    }


def published_prices(core: TradingCore) -> dict[str, dict[str, object]]:
    """The last trades as the heartbeat publishes them, for readers to mark open positions
    with (tradepipe/db/live_prices.py): {symbol: {exchange, price, time_ms}}."""
    return {
        symbol: {"exchange": exchange, "price": price, "time_ms": time_ms}
        for symbol, (exchange, price, time_ms) in last_trades(core).items()
    }


def bot_status_view(core: TradingCore, bot: BotRuntime) -> BotStatusView:
    slot = bot.slot
    halt, until, day_pnl = risk_status(core, bot)
    return BotStatusView(
        name=bot.name,
        symbol=bot.symbol,
        timeframe=bot.row.timeframe,
        strategy=bot.row.strategy,
        strategy_hash=bot.strategy_hash or None,
        state=bot.state,
        enabled=bot.row.enabled,
        accepting_entries=core.accepting_entries(bot),
        open_positions=len(bot.book.positions),
        pending_positions=bot.pending_positions(),
        working_orders=bot.working_orders(),
        model=slot.ref if slot else None,
        model_version=slot.active.version if slot and slot.active else None,
        last_candle_ms=bot.last_candle_ms,
        decisions=bot.decisions,
        entries=bot.entries,
        last_error=bot.last_error or (slot.last_error if slot and not slot.active else None),
        risk_halt=halt,
        risk_halted_until_ms=until,
        day_realised_pnl=day_pnl,
    )


def heartbeat_rows(
    status: EngineStatus,
    started_at: datetime,
    beat_at: datetime,
    extra: dict[str, Any],
    stopped: Sequence[BotStatusView] = (),
) -> list[HeartbeatWrite]:
    """The engine's beat and one per bot, including bots stopped since the last beat."""
    engine_detail: dict[str, Any] = {
        "bots": len(status.bots),
        "feed": status.feed.state.value,
        "feed_error": status.feed.last_error,
        "database_available": status.database.available,
        "pending_writes": status.database.pending_writes,
        "kill_switch": status.kill_switch.engaged,
        "market_time_ms": status.market_time_ms,
        "broker": status.broker,
        "broker_open_orders": status.broker_open_orders,
        "book_working_orders": sum(bot.working_orders for bot in status.bots),
        **extra,
    }
    beats = [
        HeartbeatWrite(
            ComponentKind.ENGINE,
            status.engine_id,
            status.engine_id,
            status.state.value,
            engine_detail,
            __version__,
            started_at,
            beat_at,
        )
    ]
    for bot in (*status.bots, *stopped):
        detail = {
            "symbol": bot.symbol,
            "timeframe": bot.timeframe,
            "open_positions": bot.open_positions,
            "working_orders": bot.working_orders,
            "accepting_entries": bot.accepting_entries,
            "strategy_hash": bot.strategy_hash,
            "model": bot.model,
            "model_version": bot.model_version,
            "last_candle_ms": bot.last_candle_ms,
            "last_error": bot.last_error,
            "risk_halt": bot.risk_halt,
        }
        beats.append(
            HeartbeatWrite(
                ComponentKind.BOT,
                bot.name,
                status.engine_id,
                bot.state.value,
                detail,
                __version__,
                started_at,
                beat_at,
            )
        )
    return beats


def engine_metrics(
    core: TradingCore, feed: FeedMetrics, recorder: Recorder, evidence: EvidenceMetrics
) -> dict[str, float]:
    """Counters and gauges of one engine, flat, for the control API's /metrics."""
    counts = core.metrics
    return {
        "trades_total": counts.trades,
        "second_candles_total": counts.seconds,
        "decisions_total": counts.decisions,
        "entries_total": counts.entries,
        "entries_blocked_total": counts.entries_blocked,
        "entries_refused_risk_total": counts.entries_refused_risk,
        "predict_calls_total": counts.predict_calls,
        "predicted_rows_total": counts.predicted_rows,
        "broker_reports_total": counts.reports,
        "orders_sent_total": core.outbox.sent,
        "outbox_pending": core.outbox.pending,
        "database_pending_writes": recorder.pending,
        "database_transactions_total": recorder.transactions,
        "database_available": 1.0 if recorder.available else 0.0,
        "database_dead_letters": len(recorder.dead_letters),
        "feed_messages_total": feed.messages,
        "feed_parse_errors_total": feed.parse_errors,
        "feed_reconnects_total": feed.reconnects,
        "feed_gaps_total": feed.gaps,
        "feed_duplicates_total": feed.duplicates,
        "feed_unhandled_total": feed.unhandled,
        "feed_oversize_total": feed.oversize,
        "feed_message_errors_total": feed.message_errors,
        "feed_consumer_errors_total": feed.consumer_errors,
        **{
            f"feed_suspect_{reason}_total": float(count)
            for reason, count in asdict(feed.suspects).items()
        },
        "feed_held_trades": float(feed.held),
        "feed_uptime_seconds": feed.uptime_seconds,
        "feed_latency_p99_ms": feed.latency.p99_ms,
        "bots": len(core.bots),
        "kill_switch_engaged": 1.0 if core.kill_switch.engaged else 0.0,
        # evidence for the review: dropped = not queued (queue full), lost = write failed
        "evidence_candles_total": evidence.candles,
        "evidence_decisions_total": evidence.decisions,
        "evidence_dropped_total": evidence.dropped,
        "evidence_lost_total": evidence.lost,
        "evidence_write_failures_total": evidence.failures,
        "evidence_queued": evidence.queued,
    }
