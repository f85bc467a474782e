"""The kernel's risk layer (tradepipe/risk.py) inside the engine: the shell around it.

The limits and their arithmetic are the kernel's, the same the backtester runs; this
module feeds them what only the engine knows (the time, every bot's open positions for the
exposure caps, the venue's answers for the circuit breaker) and says what happened:
- `risk_limit_hit` (a bot's daily loss limit or max drawdown crossed, with the figures):
  an event and an error notification. A drawdown also disables the bot in the bots table,
  so it stays stopped until an operator re-enables it (`tradepipe bots enable`, the API's
  start), which restarts its peak (`risk_rearmed`).
- `circuit_open` after `venue_error_limit` venue errors of a bot in a row (an order the
  venue rejected, or a placement or cancel the broker could not complete, each failed
  attempt counted), `circuit_closed` after a success (an order accepted or filled, a cancel
  done) or the cool-down (`venue_cooldown_seconds` of market time).
Entries are refused while a limit holds; open positions keep every exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from live.brokers import BrokerReport, OrderCancelledReport, OrderRejectedReport
from live.engine.bot import RISK_KEY, BotRuntime
from live.engine.persistence import BotStatusWrite
from tradepipe.enums import BotStatus
from tradepipe.orders import Event, PositionClosed
from tradepipe.risk import (
    DAILY_LOSS,
    DAY_MS,
    MAX_DRAWDOWN,
    BotRisk,
    CircuitBreaker,
    RiskBreach,
    RiskLimits,
    exposure,
    utc_day,
)

if TYPE_CHECKING:
    from live.engine.core import Step, TradingCore

__all__ = [
    "book_step",
    "count_report",
    "entry_refusal",
    "halt_reason",
    "on_events",
    "on_venue_answer",
    "rearm",
    "restore_risk",
    "risk_status",
]

VENUE_ERRORS = "venue_errors"


def risk_status(core: TradingCore, bot: BotRuntime) -> tuple[str | None, int | None, float]:
    """The risk fields of the bot's status view: what halts it, until when, and the
    realised net PnL of the day."""
    now = core.clock.now_or(0)
    halt = halt_reason(core, bot)
    until: int | None = None
    if halt == VENUE_ERRORS:
        until = bot.breaker.open_until_ms
    elif halt == DAILY_LOSS:
        until = (utc_day(now) + 1) * DAY_MS
    today = bot.risk.day == utc_day(now)
    return halt, until, bot.risk.day_pnl if today else 0.0


def halt_reason(core: TradingCore, bot: BotRuntime) -> str | None:
    """The limit that stops `bot`'s entries now (daily_loss_limit, max_drawdown_pct,
    venue_errors), or None; what /health and the API show."""
    now = core.clock.now_or(0)
    until = bot.breaker.open_until_ms
    if until is not None and now < until:
        return VENUE_ERRORS
    return bot.risk.halt(now)


def entry_refusal(core: TradingCore, bot: BotRuntime, capital: float, time_ms: int) -> str | None:
    """Why `bot` may not enter with `capital` at `time_ms`, or None (the check the
    backtester runs too, plus the engine-wide cap and the venue's breaker)."""
    if bot.breaker.poll(time_ms):
        _closed(core, bot, "cool-down over")
    if bot.breaker.is_open:
        return f"{VENUE_ERRORS}: {bot.breaker.errors} in a row, cooling down"
    symbol = total = 0.0
    for other in core.bots.values():
        committed = exposure(other.book.positions)
        total += committed
        if other.symbol == bot.symbol:
            symbol += committed
    breach, refusal = bot.risk.admit(
        RiskLimits.from_config(bot.config),
        time_ms,
        capital,
        symbol_exposure=symbol,
        total_exposure=total,
        max_total_exposure=core.config.max_total_exposure,
    )
    if breach is not None:
        _hit(core, bot, breach)
    return refusal


def on_events(core: TradingCore, bot: BotRuntime, events: list[Event]) -> None:
    """Book every position `events` closed; report the limits that crosses."""
    limits: RiskLimits | None = None
    for event in events:
        if isinstance(event, PositionClosed):
            limits = limits or RiskLimits.from_config(bot.config)
            breach = bot.risk.on_close(event.position, limits)
            if breach is not None:
                _hit(core, bot, breach)


def book_step(core: TradingCore, step: Step) -> None:
    """Book the closes of `step` so far, before its decisions."""
    for name in list(step.events):
        bot = core.bots.get(name)
        if bot is not None:
            with core.isolated(bot, "counting its risk"):
                on_events(core, bot, step.unbooked(name))


def count_report(core: TradingCore, name: str, report: BrokerReport) -> None:
    """The venue refused an order of bot `name`, or took one: what the breaker counts."""
    if isinstance(report, OrderRejectedReport):
        on_venue_answer(core, name, report.message)
    elif not isinstance(report, OrderCancelledReport):
        on_venue_answer(core, name, None)


def on_venue_answer(core: TradingCore, name: str, error: str | None) -> None:
    """A placement or cancel of bot `name` failed (`error`) or succeeded (None)."""
    bot = core.bots.get(name)
    if bot is None:
        return
    breaker = bot.breaker
    if error is None:
        if breaker.on_success():
            _closed(core, bot, "the venue answered")
        return
    if breaker.on_error(core.clock.now_or(0), error):
        core.emit(
            "circuit_open",
            f"bot {name}: {breaker.errors} venue errors in a row, no entries for "
            f"{breaker.cooldown_ms / 1000:g} s: {error}",
            name,
            {"errors": breaker.errors, "until_ms": breaker.open_until_ms, "last_error": error},
        )


def restore_risk(core: TradingCore, bot: BotRuntime, saved_book: dict[str, Any] | None) -> None:
    """Give a starting bot its breaker (the engine's settings) and its saved ledger; an
    enabled bot saved under a drawdown stop was re-enabled by an operator meanwhile."""
    bot.breaker = CircuitBreaker(
        error_limit=core.config.venue_error_limit,
        cooldown_ms=int(core.config.venue_cooldown_seconds * 1000),
    )
    data = (saved_book or {}).get(RISK_KEY)
    if data is not None:
        try:
            bot.risk = BotRisk.from_dict(data)
        except (ValueError, KeyError, TypeError) as error:
            # the ledger restarts empty: entries go on, limits count from now
            core.emit(
                "bot_error", f"bot {bot.name}: saved risk state unreadable: {error}", bot.name
            )
    if bot.row.enabled:
        rearm(core, bot)


def rearm(core: TradingCore, bot: BotRuntime) -> None:
    """An operator re-enabled `bot`: a drawdown stop ends and its peak restarts."""
    if bot.risk.rearm():
        core.emit(
            "risk_rearmed",
            f"bot {bot.name}: re-enabled, max drawdown measured from here",
            bot.name,
            {"realised": bot.risk.realised},
        )


def _hit(core: TradingCore, bot: BotRuntime, breach: RiskBreach) -> None:
    core.emit("risk_limit_hit", breach.message, bot.name, breach.to_dict())
    if breach.limit == MAX_DRAWDOWN:
        # disabled in the table: stays stopped, across restarts, until re-enabled
        core.recorder.submit(
            BotStatusWrite(bot.row.id, BotStatus.STOPPED, breach.message, disable=True)
        )


def _closed(core: TradingCore, bot: BotRuntime, why: str) -> None:
    core.emit("circuit_closed", f"bot {bot.name}: entries again ({why})", bot.name)
