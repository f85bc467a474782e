"""The risk layer: limits every entry passes, in backtests and the live engine alike.

Pure like the order state machine: no I/O and no clock of its own (every call takes the
time), state as a plain dict. Both the backtester and the live engine ask the same
`BotRisk.entry_refusal` before each entry and report each closed position to the same
`BotRisk.on_close`; the live engine adds the venue's `CircuitBreaker`.

What counts (README, "Risk limits"):
- **loss** is the realised net PnL after fees of the positions that *closed* in the
  current UTC day (a position's whole PnL counts on the day it closes). Unrealised PnL of
  open positions does not count: a limit acts on money actually lost, and an open
  position keeps its own stop.
- `daily_loss_limit` (quote currency): once the day's realised net PnL is at or below
  minus the limit, the bot takes no entry until the next UTC day (00:00 UTC).
- `max_drawdown_pct`: equity is the bot's base capital (capital per trade times max open
  positions, what the backtest starts with) plus its cumulative realised net PnL; the
  drawdown is the fall from the highest equity seen, in percent of that peak. At or past
  the limit the bot takes no entry until an operator re-enables it (`rearm`, which also
  restarts the peak at the current equity).
- exposure: the quote currency an open position commits (a pending entry its capital, an
  active position its remaining quantity at its entry price). An entry that would take the
  exposure of its symbol past `max_symbol_exposure` (the bot's config), or of everything
  past the engine-wide cap, is refused, not sized down: a smaller entry than its config
  says would change the strategy's trade, which a backtest could not have seen.
Open positions keep their exits whatever a limit says; only entries are refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tradepipe.botconfig import BotConfig
from tradepipe.enums import PositionStatus
from tradepipe.orders.types import Position

__all__ = [
    "DAILY_LOSS",
    "DAY_MS",
    "MAX_DRAWDOWN",
    "BotRisk",
    "CircuitBreaker",
    "RiskBreach",
    "RiskLimits",
    "exposure",
    "utc_day",
]

DAY_MS = 86_400_000
STATE_VERSION = 1
DAILY_LOSS = "daily_loss_limit"
MAX_DRAWDOWN = "max_drawdown_pct"


def utc_day(time_ms: int) -> int:
    """The UTC day number of `time_ms` (days since 1970-01-01)."""
    return time_ms // DAY_MS


def exposure(positions: Iterable[Position]) -> float:
    """Quote currency the open `positions` commit (see the module docstring)."""
    total = 0.0
    for position in positions:
        if position.status is PositionStatus.ACTIVE and position.entry_price is not None:
            total += max(position.quantity - position.exit_quantity, 0.0) * position.entry_price
        elif position.is_open:
            total += position.request.capital
    return total


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """A bot's limits (None: no limit), read from its config."""

    base_capital: float
    daily_loss_limit: float | None = None
    max_drawdown_pct: float | None = None
    max_symbol_exposure: float | None = None

    @classmethod
    def from_config(cls, config: BotConfig) -> RiskLimits:
        return cls(
            base_capital=config.capital_per_trade * config.max_open_positions,
            daily_loss_limit=config.daily_loss_limit,
            max_drawdown_pct=config.max_drawdown_pct,
            max_symbol_exposure=config.max_symbol_exposure,
        )


@dataclass(frozen=True, slots=True)
class RiskBreach:
    """A limit the bot just crossed: `limit` names it, `figures` say by how much, and
    `until_ms` is when entries may start again (None: when an operator re-enables it)."""

    bot: str
    limit: str
    time_ms: int
    until_ms: int | None
    figures: dict[str, float]

    @property
    def message(self) -> str:
        f = self.figures
        if self.limit == DAILY_LOSS:
            return (
                f"bot {self.bot}: daily loss limit hit: realised net PnL today "
                f"{f['day_pnl']:.2f} <= -{f['daily_loss_limit']:g}; no entries until "
                "00:00 UTC"
            )
        return (
            f"bot {self.bot}: max drawdown hit: {f['drawdown_pct']:.2f} % from the equity peak "
            f"{f['peak_equity']:.2f} (limit {f['max_drawdown_pct']:g} %); no entries until "
            "an operator re-enables the bot"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "limit": self.limit,
            "time_ms": self.time_ms,
            "until_ms": self.until_ms,
            "figures": dict(self.figures),
        }


@dataclass(slots=True)
class BotRisk:
    """One bot's realised PnL ledger and the halts it caused."""

    bot: str
    day: int | None = None  # the UTC day `day_pnl` belongs to
    day_pnl: float = 0.0
    realised: float = 0.0  # cumulative realised net PnL since the peak was last restarted
    peak_realised: float = 0.0
    daily_halt_day: int | None = None  # the day the daily loss limit was hit
    drawdown_halt: RiskBreach | None = None

    def on_close(self, position: Position, limits: RiskLimits) -> RiskBreach | None:
        """Book a closed position's net PnL; the breach it causes, if any."""
        time_ms = position.closed_at_ms if position.closed_at_ms is not None else 0
        self._roll(time_ms)
        pnl = position.net_pnl
        self.day_pnl += pnl
        self.realised += pnl
        self.peak_realised = max(self.peak_realised, self.realised)
        return self.check(limits, time_ms)

    def check(self, limits: RiskLimits, time_ms: int) -> RiskBreach | None:
        """Halt the bot if a limit is crossed now (a limit may also have been lowered by a
        config change); the new breach, or None if nothing new."""
        self._roll(time_ms)
        if self.drawdown_halt is None and limits.max_drawdown_pct is not None:
            drawdown = self.drawdown_pct(limits)
            if drawdown >= limits.max_drawdown_pct:
                self.drawdown_halt = RiskBreach(
                    self.bot,
                    MAX_DRAWDOWN,
                    time_ms,
                    None,
                    {
                        "drawdown_pct": drawdown,
                        "max_drawdown_pct": limits.max_drawdown_pct,
                        "equity": limits.base_capital + self.realised,
                        "peak_equity": limits.base_capital + self.peak_realised,
                    },
                )
                return self.drawdown_halt
        limit = limits.daily_loss_limit
        if self.daily_halt_day != self.day and limit is not None and self.day_pnl <= -limit:
            self.daily_halt_day = self.day
            assert self.day is not None
            until = (self.day + 1) * DAY_MS
            figures = {"day_pnl": self.day_pnl, "daily_loss_limit": limit}
            return RiskBreach(self.bot, DAILY_LOSS, time_ms, until, figures)
        return None

    def drawdown_pct(self, limits: RiskLimits) -> float:
        peak = limits.base_capital + self.peak_realised
        if peak <= 0:
            return 100.0
        return max(0.0, (self.peak_realised - self.realised) / peak * 100.0)

    def halt(self, time_ms: int) -> str | None:
        """Why entries are stopped at `time_ms` (a limit's name), or None."""
        if self.drawdown_halt is not None:
            return MAX_DRAWDOWN
        if self.daily_halt_day is not None and self.daily_halt_day == utc_day(time_ms):
            return DAILY_LOSS
        return None

    def entry_refusal(
        self,
        limits: RiskLimits,
        time_ms: int,
        capital: float,
        *,
        symbol_exposure: float,
        total_exposure: float | None = None,
        max_total_exposure: float | None = None,
    ) -> str | None:
        """Why an entry committing `capital` is refused now, or None to let it through.
        Call `check` first so a breach is reported as it happens."""
        halted = self.halt(time_ms)
        if halted == DAILY_LOSS:
            return f"daily_loss_limit: realised net PnL today {self.day_pnl:.2f}"
        if halted == MAX_DRAWDOWN:
            return "max_drawdown_pct: stopped until an operator re-enables the bot"
        cap = limits.max_symbol_exposure
        if cap is not None and symbol_exposure + capital > cap:
            return f"max_symbol_exposure: {symbol_exposure:.2f} + {capital:.2f} > {cap:g}"
        if (
            max_total_exposure is not None
            and total_exposure is not None
            and total_exposure + capital > max_total_exposure
        ):
            return (
                f"max_total_exposure: {total_exposure:.2f} + {capital:.2f} > {max_total_exposure:g}"
            )
        return None

    def admit(
        self,
        limits: RiskLimits,
        time_ms: int,
        capital: float,
        *,
        symbol_exposure: float,
        total_exposure: float | None = None,
        max_total_exposure: float | None = None,
    ) -> tuple[RiskBreach | None, str | None]:
        """The check before an entry, the one both engines run: (a breach crossed just
        now, to report; why the entry is refused, or None to let it through)."""
        breach = self.check(limits, time_ms)
        refusal = self.entry_refusal(
            limits,
            time_ms,
            capital,
            symbol_exposure=symbol_exposure,
            total_exposure=total_exposure,
            max_total_exposure=max_total_exposure,
        )
        return breach, refusal

    def rearm(self) -> bool:
        """An operator re-enabled the bot: the drawdown halt ends and the peak restarts at
        the current equity. False (and nothing changes) if it was not stopped."""
        if self.drawdown_halt is None:
            return False
        self.drawdown_halt = None
        self.peak_realised = self.realised
        return True

    def _roll(self, time_ms: int) -> None:
        day = utc_day(time_ms)
        if self.day is None or day > self.day:
            self.day, self.day_pnl = day, 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "bot": self.bot,
            "day": self.day,
            "day_pnl": self.day_pnl,
            "realised": self.realised,
            "peak_realised": self.peak_realised,
            "daily_halt_day": self.daily_halt_day,
            "drawdown_halt": None if self.drawdown_halt is None else self.drawdown_halt.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BotRisk:
        """A ledger from `to_dict`; ValueError if it is not one."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"risk state of unknown version: {data!r:.80}")
        halt = data.get("drawdown_halt")
        breach = None
        if halt is not None:
            breach = RiskBreach(
                str(halt["bot"]),
                str(halt["limit"]),
                int(halt["time_ms"]),
                halt["until_ms"],
                {str(k): float(v) for k, v in halt["figures"].items()},
            )
        return cls(
            bot=str(data["bot"]),
            day=data["day"],
            day_pnl=float(data["day_pnl"]),
            realised=float(data["realised"]),
            peak_realised=float(data["peak_realised"]),
            daily_halt_day=data["daily_halt_day"],
            drawdown_halt=breach,
        )


@dataclass(slots=True)
class CircuitBreaker:
    """Consecutive venue errors of one bot: `error_limit` in a row open the breaker (no
    entries) for `cooldown_ms`; a success closes it at once. After the cool-down it is
    half-open: entries go again and the next error opens it again at once."""

    error_limit: int
    cooldown_ms: int
    errors: int = 0
    opened_at_ms: int | None = None
    last_error: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.error_limit < 1 or self.cooldown_ms < 0:
            raise ValueError(
                f"circuit breaker needs error_limit >= 1 and cooldown >= 0: "
                f"{self.error_limit}, {self.cooldown_ms}"
            )

    def on_error(self, time_ms: int, message: str) -> bool:
        """A venue call failed; True if this error opened the breaker."""
        self.errors += 1
        self.last_error = message
        if self.opened_at_ms is None and self.errors >= self.error_limit:
            self.opened_at_ms = time_ms
            return True
        return False

    def on_success(self) -> bool:
        """A venue call succeeded; True if that closed an open breaker."""
        was_open = self.opened_at_ms is not None
        self.errors, self.opened_at_ms, self.last_error = 0, None, None
        return was_open

    def poll(self, time_ms: int) -> bool:
        """True if the cool-down is over at `time_ms` and the breaker closed now."""
        if self.opened_at_ms is None or time_ms < self.opened_at_ms + self.cooldown_ms:
            return False
        self.opened_at_ms = None
        self.errors = self.error_limit - 1  # half-open
        return True

    @property
    def is_open(self) -> bool:
        return self.opened_at_ms is not None

    @property
    def open_until_ms(self) -> int | None:
        return None if self.opened_at_ms is None else self.opened_at_ms + self.cooldown_ms
